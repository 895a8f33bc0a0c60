"""The browse use case: a page of images predicted as a class, images matching a text, the
dashboard, and the display copies (thumbnails) of images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from core import validation
from core.errors import InvalidInput
from core.usecases.browse import dashboard, pages
from core.usecases.browse.results import (
    ClassifierReport,
    CurvePoint,
    Dashboard,
    GridItem,
    GridPage,
    ImageFile,
    ImageRef,
    SearchHit,
    SearchResult,
)
from core.usecases.browse.thumbs import ThumbnailCache
from core.usecases.context import Context
from core.usecases.labeling.loop import progress_of
from core.usecases.labeling.queue import ProjectState
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider

CurveKey = tuple[int, int, int]


class Browse:
    def __init__(self, context: Context, *, models: ModelProvider, states: ProjectStates,
                 thumbnails: ThumbnailCache) -> None:
        self.context = context
        self.models = models
        self.states = states
        self.thumbnails = thumbnails
        self._curves: dict[CurveKey, tuple[CurvePoint, ...]] = {}

    def image_files(self, image_ids: Sequence[int]) -> dict[int, ImageFile]:
        """image_id -> its path as imported, readable copy and sha256."""
        with self.context.read_sessions.begin() as session:
            return pages.image_files(session, image_ids=image_ids)

    def thumbnail(self, image: ImageRef, *, size: int) -> Path:
        """The display copy of an image (an ImageFile, a grid item, a queue Item); raises ImageError
        when it cannot be read."""
        return self.thumbnails.path(sha256=image.sha256, file_path=image.file_path, size=size)

    def prefetch_thumbnails(self, images: Sequence[ImageRef], *, size: int) -> list[Path | None]:
        """Start making these thumbnails in the background; returns those already made (else None)."""
        return self.thumbnails.prefetch([(i.sha256, i.file_path) for i in images], size=size)

    def grid(self, project: str, label: str, *, page: int = 0, page_size: int = 48, include_labeled: bool = False,
             annotator: str | None = None) -> GridPage:
        """A page of images predicted as `label`, most confident first, near-duplicates together."""
        page, page_size = pages.check_page(page, page_size)
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            state = self.states.get(act.session, act.require_project())
            with state.lock:
                label_id = state.live_class_id(label)
                if state.probs is None:
                    return GridPage(label=label, page=0, pages=1, total=0, items=())
                rows, confidence = pages.predicted_as(state.probs, state.labels, state.label_ids.index(label_id),
                                                      include_labeled=include_labeled)
                found = pages.paginate(rows, confidence, state.embeddings, page=page, page_size=page_size)
                ids, groups = state.image_ids[found.positions], state.image_ids[found.groups]
            files = pages.image_files(act.session, image_ids=ids.tolist())
        items = tuple(GridItem(image_id=int(i), path=files[int(i)].path, file_path=files[int(i)].file_path,
                               sha256=files[int(i)].sha256, confidence=float(c), group=int(g))
                      for i, c, g in zip(ids, found.scores, groups, strict=True))
        return GridPage(label=label, page=found.page, pages=found.pages, total=found.total, items=items)

    def search(self, project: str, text: str, *, limit: int = 48, unlabeled_only: bool = False,
               annotator: str | None = None) -> SearchResult:
        """Images whose cached embeddings best match `text` (CLIP text-to-image cosine), at most `limit`
        (1..pages.MAX_PAGE_SIZE)."""
        limit = validation.capped_limit(limit, field="limit", maximum=pages.MAX_PAGE_SIZE)
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            state = self.states.get(act.session, act.require_project())
            spec = self.models.spec(act.require_project())
        model = self.models.load(spec)
        if state.model_id != model.model_id:
            raise InvalidInput(f"text: the images were embedded with {state.model_id or 'no model yet'}, not "
                               f"{model.model_id}; embed the project with this model to search it")
        query = pages.query_vector(model.encode_texts, text)
        with state.lock:
            rows, scores = pages.search(state.embeddings, state.labels, query, limit=limit,
                                        unlabeled_only=unlabeled_only)
            ids, labels = state.image_ids[rows], state.labels[rows]
            names = [None if j < 0 else state.class_names.get(state.label_ids[j]) for j in labels.tolist()]
        files = self.image_files(ids.tolist())
        items = tuple(SearchHit(image_id=int(i), path=files[int(i)].path, file_path=files[int(i)].file_path,
                                sha256=files[int(i)].sha256, score=float(s), label=n)
                      for i, s, n in zip(ids, scores, names, strict=True))
        return SearchResult(text=text, items=items)

    def dashboard(self, project: str, *, annotator: str | None = None) -> Dashboard:
        """Counts per class and source, progress, estimated accuracy, efficiency curve, throughput."""
        with self.context.action(project, annotator=annotator, permission="view", write=False) as act:
            state = self.states.get(act.session, act.require_project())
            with state.lock:
                model_counts: dict[int, int] = {}
                if state.probs is not None and state.probs.shape[1]:
                    top = np.bincount(state.probs[state.labels < 0].argmax(axis=1), minlength=len(state.label_ids))
                    model_counts = {state.label_ids[j]: int(c) for j, c in enumerate(top)}
                classifier = cast(ClassifierReport, state.classifier.report()) if state.classifier else None
            session, project_id = act.session, act.project_id
            classes = dashboard.class_counts(session, project_id=project_id, model_counts=model_counts)
            accuracy = dashboard.pseudo_label_accuracy(session, project_id=project_id)
            ordered = dashboard.labels_in_order(session, project_id=project_id)
            people = dashboard.throughput(session, project_id=project_id)
        sources = {s: sum(c[s] for c in classes) for s in ("human", "import", "review", "model")}  # type: ignore[literal-required]
        return Dashboard(progress=progress_of(state), classes=tuple(classes), sources=sources, accuracy=accuracy,
                         classifier=classifier, curve=self._efficiency_curve(state, ordered), throughput=people)

    def _efficiency_curve(self, state: ProjectState, ordered: list[tuple[int, int]]) -> tuple[CurvePoint, ...]:
        key = (state.project_id, len(ordered), ordered[-1][0] if ordered else 0)
        if key not in self._curves:
            with state.lock:
                kept = [(state.position[i], state.label_ids.index(lid)) for i, lid in ordered
                        if i in state.position and lid in state.label_ids]
                rows = np.array([r for r, _ in kept], dtype=np.int64)
                labels = np.array([y for _, y in kept], dtype=np.int64)
                emb, head, scale, k = state.embeddings, state.head, state.logit_scale, len(state.label_ids)
            self._curves[key] = tuple(dashboard.efficiency_curve(
                emb, rows, labels, num_classes=k, text_head=head, logit_scale=scale,
                rng=np.random.default_rng([state.project_id, rows.size])))
        return self._curves[key]
