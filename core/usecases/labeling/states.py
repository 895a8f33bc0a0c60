"""The live labeling states of a Service's projects: built from the store on first use, kept in
memory, forgotten when the store changes under them (import, embedding, class edits), and refitted
after each decision (before answering, or in a background thread on the web server)."""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy.orm import Session

from core.errors import ModelLoadError
from core.store import repo
from core.store.db import is_read_only
from core.store.schema import LabelClass, Project
from core.usecases import scoring
from core.usecases.context import Context
from core.usecases.labeling.annotate import build_state
from core.usecases.labeling.queue import ProjectState, audit_share
from core.usecases.labeling.refit import Refitter
from core.usecases.models import ModelProvider


class ProjectStates:
    def __init__(self, context: Context, models: ModelProvider, *, background_refit: bool = False) -> None:
        """`background_refit`: the web server answers a decision after the commit and a cheap re-rank,
        and refits on all labels in a worker thread; the CLI (default) refits before returning."""
        self.context = context
        self.models = models
        self._refitter = Refitter() if background_refit else None
        self._states: dict[int, ProjectState] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, project: Project, *, refresh: bool = False) -> ProjectState:
        """The live state of `project`, built in this session on first use (or when asked)."""
        with self._lock:
            if refresh or project.id not in self._states:
                self._states[project.id] = self._build(session, project)
            return self._states[project.id]

    def model_id(self, project_id: int) -> str | None:
        """The model whose embeddings the project's live state uses (None: not embedded yet)."""
        with self.context.read_sessions.begin() as session:
            project = session.get(Project, project_id)
            return None if project is None else self.get(session, project).model_id

    def forget(self, project_id: int) -> None:
        with self._lock:
            self._states.pop(project_id, None)

    @property
    def refits_in_background(self) -> bool:
        return self._refitter is not None

    def after_change(self, state: ProjectState) -> None:
        """Called with state.lock held, after the change is in the session."""
        if self._refitter is None:
            state.refit()
            return
        self._refitter.schedule(state)  # meanwhile next() already leaves out what was just decided

    def wait_for_refits(self, timeout: float = 60.0) -> bool:
        return True if self._refitter is None else self._refitter.wait_idle(timeout)

    def close(self) -> None:
        if self._refitter is not None:
            self._refitter.stop()

    def _build(self, session: Session, project: Project) -> ProjectState:
        embedded = repo.embedded_model_ids(session, project_id=project.id)
        model_id = (project.settings or {}).get("model_id") or (embedded[0][0] if embedded else None)
        spec = self.models.spec(project)
        keys: list[str] = []

        def head_for(classes: list[LabelClass]) -> tuple[np.ndarray, float] | None:
            assert model_id is not None  # build_state asks for a head only when there are embeddings
            try:
                head, scale, key = scoring.ensure_text_head(
                    session, lambda: self.models.for_embeddings(spec, model_id), project_id=project.id,
                    model_id=model_id, classes=classes,
                    writer=self.context.sessions.begin if is_read_only(session) else None)
            except ModelLoadError:
                return None
            keys.append(key)
            return head, scale

        state = build_state(session, project_id=project.id, model_id=model_id, head_for=head_for,
                            strategy=(project.settings or {}).get("strategy"))
        state.head_key = keys[0] if keys else None
        share = audit_share(project)
        if share != state.audit_share:  # built with the default share: rank again with the project's
            state.audit_share = share
            state.rerank()
        return state
