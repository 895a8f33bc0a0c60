"""The use cases, one transaction per user action. The CLI and the web app both call this object;
it owns the engine and the loaded models (created in main(), never at import time)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import annotate, auth, importer, leases, scoring, team
from core.config import Settings
from core.errors import Conflict, InvalidInput, ModelLoadError, NotFound, PermissionDenied
from core.labeling import suspects
from core.models.base import ImageTextModel, ModelSpec
from core.queue import ProjectState, Ranked
from core.refit import Refitter
from core.store import repo
from core.store.db import make_engine, make_sessionmaker
from core.store.migrate import upgrade
from core.store.repo import ClassSpec
from core.store.schema import Image, LabelClass, Project, User


class Service:
    def __init__(self, settings: Settings, *, migrate: bool = True, background_refit: bool = False) -> None:
        """`background_refit`: the web server answers a decision after the commit and a cheap re-rank,
        and refits on all labels in a worker thread; the CLI (default) refits before returning."""
        self.settings = settings
        self._refitter = Refitter() if background_refit else None
        self.engine = make_engine(settings.db)
        if migrate:
            upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self._models: dict[ModelSpec, ImageTextModel] = {}
        self._model_lock = threading.Lock()
        self._states: dict[int, ProjectState] = {}
        self._state_lock = threading.Lock()

    def close(self) -> None:
        if self._refitter is not None:
            self._refitter.stop()
        if getattr(self, "_regions", None) is not None:
            self._regions.close()
        self.engine.dispose()

    def _after_change(self, state: ProjectState) -> None:
        """Called with state.lock held, after the store has the change."""
        if self._refitter is None:
            state.refit()
            return
        self._refitter.schedule(state)  # meanwhile next() already leaves out what was just decided

    def wait_for_refits(self, timeout: float = 60.0) -> bool:
        return True if self._refitter is None else self._refitter.wait_idle(timeout)

    # -- projects ------------------------------------------------------------------------------

    def create_project(self, name: str, *, classes: Sequence[ClassSpec], actor: str | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name:
            raise InvalidInput("--project: a project needs a non-empty name")
        try:
            with self.sessions.begin() as session:
                self.actor(session, actor, "manage_projects")
                if repo.project_by_name(session, name=name) is not None:
                    raise InvalidInput(f"--project: a project named '{name}' already exists")
                project = repo.create_project(session, name=name, classes=classes)
                return {"project": project.name, "id": project.id, "classes": [c.name for c in classes]}
        except IntegrityError as exc:
            raise InvalidInput(f"--project: a project named '{name}' already exists") from exc

    def project(self, session: Session, name: str) -> Project:
        project = repo.project_by_name(session, name=name)
        if project is None:
            known = ", ".join(repo.project_names(session)) or "none yet; create one with `clipmark init`"
            raise NotFound(f"--project: no project named '{name}' (projects: {known})")
        return project

    def user_id(self, session: Session, name: str | None = None, permission: str = "label") -> int:
        return self.actor(session, name, permission).id

    def actor(self, session: Session, name: str | None, permission: str) -> User:
        """The acting user, checked. `None` is the trusted local caller (the CLI, which has the database
        file anyway): it acts as settings.user. Before any password exists (single-user mode) everyone is
        an admin; in team mode only known, enabled users act, within their role."""
        if name is None:
            return repo.get_or_create_user(session, name=self.settings.user, role="admin")
        user = repo.user_by_name(session, name=name)
        if user is None:
            if repo.team_mode(session):
                raise PermissionDenied(f"unknown user '{name}': an admin adds users with `clipmark user add`")
            user = repo.get_or_create_user(session, name=name, role="admin")
        if user.disabled:
            raise PermissionDenied(f"user '{name}' is disabled")
        auth.require(user=name, role=user.role, permission=permission)
        return user

    # -- import --------------------------------------------------------------------------------

    def import_images(
        self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
        user: str | None = None, progress: bool = True, on_progress: importer.ProgressFn | None = None,
    ) -> importer.ImportSummary:
        if not paths:
            raise InvalidInput("import: give at least one folder, zip file or image file")
        importer.check_labels_from(labels_from)
        with self.sessions.begin() as session:
            request = importer.ImportRequest(
                project_id=self.project(session, project).id, paths=list(paths),
                labels_from=labels_from, media_dir=self.settings.resolved_media_dir(),
                max_pixels=self.settings.max_pixels, user_id=self.user_id(session, user, "manage_projects"),
            )
        try:
            return importer.run_import(self.sessions, request, progress=progress, on_progress=on_progress)
        finally:
            self._forget_state(request.project_id)

    def _forget_state(self, project_id: int) -> None:
        with self._state_lock:
            self._states.pop(project_id, None)

    # -- models, embeddings, predictions -------------------------------------------------------

    def model_spec(self, project: Project | None = None) -> ModelSpec:
        if project is not None and project.model_arch:
            return ModelSpec(arch=project.model_arch, pretrained=project.model_pretrained,
                             config=(project.settings or {}).get("model_config"))
        s = self.settings
        return ModelSpec(arch=s.model, pretrained=s.pretrained, config=s.model_config)

    def load_model(self, spec: ModelSpec) -> ImageTextModel:
        from core.models.clip import load_image_text_model

        with self._model_lock:
            if spec not in self._models:
                self._models[spec] = load_image_text_model(spec, device=self.settings.device)
            return self._models[spec]

    def embed(
        self, project: str, *, spec: ModelSpec | None = None, progress: bool = True,
        on_progress: scoring.ProgressFn | None = None,
    ) -> scoring.EmbedSummary:
        with self.sessions.begin() as session:
            row = self.project(session, project)
            spec = spec or self.model_spec()
            project_id = row.id
        model = self.load_model(spec)
        with self.sessions.begin() as session:
            row = session.get(Project, project_id)
            row.model_arch, row.model_pretrained = spec.arch, spec.pretrained
            row.settings = {**(row.settings or {}), "model_config": spec.config, "model_id": model.model_id}
        try:
            return scoring.embed_project(
                self.sessions, model, project_id=project_id, batch_size=self.settings.batch_size,
                num_workers=self.settings.num_workers, max_pixels=self.settings.max_pixels,
                progress=progress, on_progress=on_progress,
            )
        finally:
            self._forget_state(project_id)

    def predict(self, project: str) -> scoring.PredictSummary:
        """Store pseudo-labels for every embedded image from the current classifier: zero-shot
        without labels, adapted once people have labeled."""
        state = self.state(project, refresh=True)
        if state.model_id is None or state.probs is None:
            raise InvalidInput(f"project '{project}' has no embeddings yet: run `clipmark embed` first")
        with self.sessions.begin() as session, state.lock:
            run = repo.add_prediction_run(
                session, project_id=state.project_id, model_id=state.model_id,
                model_version=state.classifier.version if state.classifier else "zero-shot",
                prompts_hash=state.head_key, label_ids=state.label_ids, image_ids=state.image_ids,
                probs=state.probs,
            )
            return scoring.PredictSummary(run.id, len(state.image_ids), state.model_id, run.model_version,
                                          state.head_key)

    # -- the labeling loop ---------------------------------------------------------------------

    def state(self, project: str, *, refresh: bool = False) -> ProjectState:
        """The live state of a project, built from the store on first use (or when asked)."""
        with self.sessions.begin() as session:
            row = self.project(session, project)
            project_id = row.id
        with self._state_lock:
            if refresh or project_id not in self._states:
                self._states[project_id] = self._build_state(project_id)
            return self._states[project_id]

    def _build_state(self, project_id: int) -> ProjectState:
        with self.sessions.begin() as session:
            row = session.get(Project, project_id)
            embedded = repo.embedded_model_ids(session, project_id=project_id)
            model_id = (row.settings or {}).get("model_id") or (embedded[0][0] if embedded else None)
            spec = self.model_spec(row)
            keys: list[str] = []

            def head_for(classes: list[LabelClass]) -> tuple[np.ndarray, float] | None:
                try:
                    head, scale, key = scoring.ensure_text_head(
                        session, lambda: self._model_for(spec, model_id), project_id=project_id,
                        model_id=model_id, classes=classes)
                except ModelLoadError:
                    return None
                keys.append(key)
                return head, scale

            state = annotate.build_state(session, project_id=project_id, model_id=model_id, head_for=head_for,
                                         strategy=(row.settings or {}).get("strategy"))
            state.head_key = keys[0] if keys else None
            return state

    def _model_for(self, spec: ModelSpec, model_id: str) -> ImageTextModel:
        """The model that made `model_id` embeddings; a text head from any other model would not fit them."""
        if spec.model_id != model_id:
            raise ModelLoadError(f"the embeddings were made by {model_id}, the configured model is {spec.model_id}: "
                                 "embed again with the configured model to get a zero-shot head")
        return self.load_model(spec)

    def next_items(self, project: str, *, annotator: str | None = None, n: int = 1, k: int = 3) -> list[dict[str, Any]]:
        """The next n items for this annotator, each now leased to them: overlap items that still need
        another (blind) opinion first, then the queue. Nobody else is handed these items meanwhile."""
        if n < 1 or k < 1:
            raise InvalidInput("n and k: must be at least 1")
        state = self.state(project)
        with self.sessions.begin() as session:
            user = self.actor(session, annotator, "label")
            overlap = self._overlap(session, state.project_id)
            busy = leases.held_by_others(session, project_id=state.project_id, user_id=user.id)
            extra = team.open_overlap(session, project_id=state.project_id, user_id=user.id, **overlap)
            with state.lock:
                queued = [r for r in state.next(n + 16, exclude=busy)]
            chosen = self._claim(session, state.project_id, user.id, extra + queued, n, overlap)
            with state.lock:
                tops = {r.image_id: state.top_k(r.image_id, k) for r in chosen}
            names = {c.id: c.name for c in repo.classes_of(session, project_id=state.project_id)}
            images = {i.id: i for i in session.scalars(select(Image).where(Image.id.in_(tops)))}
        return [
            {"image_id": r.image_id, "path": images[r.image_id].original_path,
             "file_path": images[r.image_id].file_path,
             "top": [{"label": names.get(lid), "confidence": p} for lid, p in tops[r.image_id]],
             "reason": {"strategy": r.strategy, "score": r.score}}
            for r in chosen
        ]

    def _overlap(self, session: Session, project_id: int) -> dict[str, Any]:
        settings = session.get(Project, project_id).settings or {}
        return {"share": float(settings.get("overlap", 0.0)), "annotators": int(settings.get("overlap_annotators", 2))}

    def _claim(self, session: Session, project_id: int, user_id: int, candidates: list[Ranked], n: int,
               overlap: dict[str, Any]) -> list[Ranked]:
        chosen: list[Ranked] = []
        for item in candidates:
            if len(chosen) == n:
                break
            slots = leases.overlap_slots(project_id=project_id, image_id=item.image_id, **overlap)
            if all(c.image_id != item.image_id for c in chosen) and leases.claim(
                    session, project_id=project_id, image_id=item.image_id, user_id=user_id, slots=slots) is not None:
                chosen.append(item)
        return chosen

    def decide(
        self, project: str, *, image_id: int, action: str, label: str | None = None, annotator: str | None = None,
    ) -> dict[str, Any]:
        """Persist one decision (committed before returning), then re-rank the queue (and refit: before
        returning, or right after in the background on the web server). Conflict when the item is
        someone else's (their lease, or labeled by them outside overlap)."""
        return self.decide_many(project, image_ids=[image_id], action=action, label=label, annotator=annotator,
                                strict=True)[0]

    def decide_many(
        self, project: str, *, image_ids: Sequence[int], action: str, label: str | None = None,
        annotator: str | None = None, strict: bool = False,
    ) -> list[dict[str, Any]]:
        """The same decision on several images (grid accept-all, search selection): one transaction,
        committed before returning, then one refit. `accept` without a label takes each proposal.
        Images that are someone else's are left out (strict: Conflict instead)."""
        if action not in annotate.DECISIONS:
            raise InvalidInput(f"action: unknown '{action}' (valid: {', '.join(annotate.DECISIONS)})")
        state = self.state(project)
        results = []
        with self.sessions.begin() as session:
            given = None if label is None else annotate.class_id(session, project_id=state.project_id, label=label)
            user_id = self.user_id(session, annotator)
            overlap = self._overlap(session, state.project_id)
            for image_id in image_ids:
                annotate.check_image(session, project_id=state.project_id, image_id=image_id)
                if not self._take(session, state.project_id, image_id, user_id, action, overlap):
                    if strict:
                        raise Conflict(f"image {image_id} is assigned to someone else (their lease is live, or they "
                                       "labeled it); your decision was not recorded, take the next item")
                    continue
                label_id = given if given is not None else self._proposal(state, image_id, action)
                event = annotate.record_decision(session, project_id=state.project_id, image_id=image_id,
                                                 action=action, label_id=label_id, user_id=user_id)
                if action != "skip" and leases.overlap_slots(project_id=state.project_id, image_id=image_id,
                                                             **overlap) > 1:
                    team.apply_policy(session, project_id=state.project_id, image_id=image_id)
                    current = repo.current_label(session, image_id=image_id)
                    label_id = current.label_id if current else label_id
                results.append({"event_id": event.id, "image_id": image_id, "action": action,
                                "label_id": label_id})
        with state.lock:
            for result in results:
                if action == "skip":
                    state.skip(result["image_id"], result["event_id"])
                else:
                    state.set_label(result["image_id"], result["label_id"])
            if action == "skip" and self._refitter is None:
                state.rerank()
            else:
                self._after_change(state)
            version = state.classifier.version if state.classifier else None
        names = self._class_names(state)
        for result in results:
            result["label"] = label if label is not None else names.get(result.pop("label_id", None))
            result.update(model_version=version, update_seconds=state.update_seconds)
        return results

    def _take(self, session: Session, project_id: int, image_id: int, user_id: int, action: str,
              overlap: dict[str, Any]) -> bool:
        """Hold the item for this decision: the user's own lease (or a fresh claim) is completed on a
        label and given back on a skip. False when it is someone else's."""
        mine = leases.holder_slot(session, image_id=image_id, user_id=user_id)
        if mine is None:
            slots = leases.overlap_slots(project_id=project_id, image_id=image_id, **overlap)
            if leases.claim(session, project_id=project_id, image_id=image_id, user_id=user_id, slots=slots) is None:
                return False
        if action == "skip":
            leases.release(session, image_id=image_id, user_id=user_id)
        else:
            leases.complete(session, project_id=project_id, image_id=image_id, user_id=user_id)
        return True

    def _proposal(self, state: ProjectState, image_id: int, action: str) -> int | None:
        if action != "accept":
            return None
        top = state.top_k(image_id, 1)
        if not top:
            raise InvalidInput(f"accept: image {image_id} has no proposal yet; choose a label")
        return top[0][0]

    def undo(self, project: str, *, annotator: str | None = None) -> dict[str, Any]:
        state = self.state(project)
        with self.sessions.begin() as session:
            user_id = self.user_id(session, annotator)
            target, undo = annotate.undo_last(session, project_id=state.project_id, user_id=user_id)
            leases.reopen(session, project_id=state.project_id, image_id=target.image_id, user_id=user_id)
            current = repo.current_label(session, image_id=target.image_id)
            restored = current.label_id if current else None
            result = {"event_id": undo.id, "undid": target.id, "image_id": target.image_id,
                      "action": target.action}
        with state.lock:
            state.unskip(target.image_id)
            state.set_label(target.image_id, restored)
            self._after_change(state)
        result["label"] = self._class_names(state).get(restored)
        return result

    def suspects(self, project: str, *, limit: int = 100) -> dict[str, Any]:
        """Human labels the out-of-fold model contradicts, and near-duplicates labeled differently."""
        state = self.state(project)
        with state.lock:
            labeled = np.flatnonzero(state.labels >= 0)
            emb, labels = state.embeddings[labeled], state.labels[labeled]
            rng = np.random.default_rng([state.project_id, labeled.size, 7])
            found, pairs = [], []
            if labeled.size >= 2:
                probs = suspects.out_of_fold_probs(emb, labels, num_classes=len(state.label_ids),
                                                   text_head=state.head, logit_scale=state.logit_scale,
                                                   rng=rng, center=state.embeddings.mean(axis=0))
                found = suspects.label_error_suspects(probs, labels)[:limit]
                pairs = suspects.near_duplicate_conflicts(emb, labels)[:limit]
            ids, label_ids = state.image_ids[labeled], state.label_ids
        with self.sessions.begin() as session:
            names = {c.id: c.name for c in repo.classes_of(session, project_id=state.project_id)}
            name = lambda j: names.get(label_ids[j])  # noqa: E731
            return {
                "suspects": [{"image_id": int(ids[s.index]), "label": name(s.given), "suggested": name(s.predicted),
                              "p_suggested": s.p_predicted, "p_label": s.p_given, "score": s.score}
                             for s in found],
                "near_duplicates": [{"image_ids": [int(ids[i]), int(ids[j])], "labels": [name(labels[i]),
                                     name(labels[j])], "cosine": c} for i, j, c in pairs],
            }

    def _class_names(self, state: ProjectState) -> dict[int | None, str]:
        with self.sessions.begin() as session:
            classes = repo.classes_of(session, project_id=state.project_id, include_archived=True)
            return {c.id: c.name for c in classes}

    # -- status and export ---------------------------------------------------------------------

    def status(self, project: str) -> dict[str, Any]:
        with self.sessions.begin() as session:
            row = self.project(session, project)
            classes = repo.classes_of(session, project_id=row.id)
            counts = repo.label_counts(session, project_id=row.id)
            run = repo.latest_run(session, project_id=row.id)
            per_class = {c.name: {"human": 0, "import": 0, "review": 0} for c in classes}
            names = {c.id: c.name for c in classes}
            for label_id, source, count in counts:
                if label_id in names:
                    per_class[names[label_id]][source] = per_class[names[label_id]].get(source, 0) + count
            return {
                "project": row.name,
                "images": repo.image_count(session, project_id=row.id),
                "failed": [{"file": f, "reason": r} for f, r in repo.failed_images(session, project_id=row.id)],
                "embedded": dict(repo.embedded_model_ids(session, project_id=row.id)),
                "labeled": sum(count for _, _, count in counts),
                "classes": per_class,
                "latest_prediction": None if run is None else {
                    "run_id": run.id, "model_id": run.model_id, "model_version": run.model_version,
                    "prompts_hash": run.prompts_hash, "created_at": run.created_at.isoformat()},
            }

    def export(self, project: str, *, fmt: str, out: str | Path, actor: str | None = None,
               **options: Any) -> dict[str, Any]:
        """Write the project in `fmt` (core.export.FORMATS) to `out`; options: include, min_confidence,
        status, link, split, seed, leak_threshold, overwrite, progress, on_progress(done, total)."""
        from core.export import export_project

        with self.sessions.begin() as session:
            self.actor(session, actor, "export")
            project_id = self.project(session, project).id
        return export_project(self.sessions, project_id=project_id, fmt=fmt, out=out, **options)

    def export_csv(self, project: str, out: str | Path, **options: Any) -> dict[str, Any]:
        return self.export(project, fmt="csv", out=out, **options)

    def import_labels(
        self, project: str, source: str | Path, *, fmt: str, include: str = "human", add_classes: bool = False,
        replace: bool = False, user: str | None = None,
    ) -> dict[str, Any]:
        """Labels made elsewhere (imagefolder, csv, coco, our jsonl) onto the project's images."""
        from core.export import import_labels

        with self.sessions.begin() as session:
            project_id = self.project(session, project).id
            user_id = self.user_id(session, user, "manage_projects")
        try:
            return import_labels(self.sessions, project_id=project_id, fmt=fmt, source=source, user_id=user_id,
                                 include=include, add_classes=add_classes, replace=replace)
        finally:
            self._forget_state(project_id)

    # -- web app views -------------------------------------------------------------------------
    # What the web app needs beyond the labeling loop. Each method delegates to one core module
    # (workspace + jobs, thumbs, browse, dashboard, class_admin); resources are made on first use.

    def workspace(self) -> Any:
        """The core.workspace.Workspace of this service: jobs, thumbnails, model failures."""
        from core.workspace import Workspace

        with self._state_lock:
            if getattr(self, "_workspace", None) is None:
                self._workspace = Workspace.create(self.settings)
            return self._workspace

    @property
    def regions(self) -> Any:
        """The core.regions.Regions of this service: Segment Anything, its embedding cache, instances
        and region proposals. Made on first use; the segmenter loads on the first click."""
        from core.regions import Regions

        with self._state_lock:
            if getattr(self, "_regions", None) is None:
                self._regions = Regions(self)
            return self._regions

    def project_names(self) -> list[str]:
        with self.sessions.begin() as session:
            return repo.project_names(session)

    def project_info(self, project: str) -> dict[str, Any]:
        """Classes (description, prompts, images labeled with each) and the project's model."""
        with self.sessions.begin() as session:
            row = self.project(session, project)
            spec = self.model_spec(row)
            counts: dict[int, int] = {}
            for label_id, _, count in repo.label_counts(session, project_id=row.id):
                counts[label_id] = counts.get(label_id, 0) + count
            classes = [{"label": c.name, "description": c.description, "prompts": list(c.prompts or []),
                        "labels": counts.get(c.id, 0)} for c in repo.classes_of(session, project_id=row.id)]
            return {"project": row.name, "images": repo.image_count(session, project_id=row.id),
                    "model": {"arch": spec.arch, "pretrained": spec.pretrained}, "classes": classes}

    def start_import(
        self, project: str, paths: Sequence[str | Path], *, labels_from: str | None = None,
        annotator: str | None = None, embed: bool = True, uploaded: bool = False,
    ) -> dict[str, Any]:
        """Import in the background, then embed and predict with the project's model."""
        workspace = self.workspace()
        if not paths:
            raise InvalidInput("paths: give at least one folder, zip file or image file")
        with self.sessions.begin() as session:
            self.actor(session, annotator, "manage_projects")
            self.project(session, project)
        paths = workspace.stage_uploads(paths) if uploaded else list(paths)
        importer.check_labels_from(labels_from)

        def work(progress: Any) -> dict[str, Any]:
            progress.stage("import")
            summary = self.import_images(project, paths, labels_from=labels_from, user=annotator, progress=False,
                                         on_progress=progress)
            return {"import": summary.as_dict(), **(self._embed_and_predict(project, progress) if embed else {})}

        return workspace.jobs.submit(kind="import", project=project, work=work)

    def start_embed(self, project: str, *, arch: str | None = None, pretrained: str | None = None,
                    annotator: str | None = None) -> dict[str, Any]:
        """Embed (with this model, remembered for the project) and predict, in the background."""
        with self.sessions.begin() as session:
            self.actor(session, annotator, "manage_projects")
            spec = self.model_spec(self.project(session, project))
        if arch or pretrained is not None:
            chosen = None if pretrained is None or pretrained.strip().lower() in ("", "none", "random") else pretrained
            spec = ModelSpec(arch=(arch or spec.arch).strip(), pretrained=chosen.strip() if chosen else None)
        return self.workspace().jobs.submit(kind="embed", project=project,
                                            work=lambda progress: self._embed_and_predict(project, progress, spec))

    def start_predict(self, project: str, *, annotator: str | None = None) -> dict[str, Any]:
        with self.sessions.begin() as session:
            self.actor(session, annotator, "manage_projects")

        def work(progress: Any) -> dict[str, Any]:
            progress.stage("predict")
            return {"predict": self.predict(project).as_dict()}

        return self.workspace().jobs.submit(kind="predict", project=project, work=work)

    def _embed_and_predict(self, project: str, progress: Any, spec: ModelSpec | None = None) -> dict[str, Any]:
        if spec is None:
            with self.sessions.begin() as session:
                spec = self.model_spec(self.project(session, project))
        problem = self.model_problem(spec=spec)
        if problem:
            progress.note(f"model not loaded, label by hand meanwhile: {problem}")
            return {"model_error": problem}
        progress.stage("embed")
        embedded = self.embed(project, spec=spec, progress=False, on_progress=progress).as_dict()
        if not embedded["computed"] and not embedded["cached"]:
            return {"embed": embedded}
        progress.stage("predict")
        return {"embed": embedded, "predict": self.predict(project).as_dict()}

    def jobs(self, project: str | None = None) -> list[dict[str, Any]]:
        return self.workspace().jobs.list(project=project)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.workspace().jobs.get(job_id)

    def wait_job(self, job_id: str, *, timeout: float = 600.0) -> dict[str, Any]:
        return self.workspace().jobs.wait(job_id, timeout=timeout)

    def model_problem(self, project: str | None = None, *, spec: ModelSpec | None = None) -> str | None:
        """None when the model loads; else why not and how to fix it (failures are remembered)."""
        if spec is None:
            with self.sessions.begin() as session:
                spec = self.model_spec(self.project(session, project) if project else None)
        workspace = self.workspace()
        if spec not in workspace.model_errors:
            try:
                self.load_model(spec)
                return None
            except (ModelLoadError, InvalidInput) as exc:
                workspace.model_errors[spec] = str(exc)
        return workspace.model_errors[spec]

    def start_model_check(self, project: str | None = None) -> dict[str, Any]:
        """Load the model in the background, so the app can say early why it cannot."""
        def work(progress: Any) -> dict[str, Any]:
            progress.stage("load model")
            problem = self.model_problem(project)
            if problem:
                progress.note(f"model not loaded, label by hand meanwhile: {problem}")
            return {"model_error": problem}

        return self.workspace().jobs.submit(kind="model check", project=project or "", work=work)

    def known_model_problem(self, project: str | None = None) -> str | None:
        """The remembered loading failure of the project's model, without trying to load it."""
        with self.sessions.begin() as session:
            spec = self.model_spec(self.project(session, project) if project else None)
        return self.workspace().model_errors.get(spec)

    def _edit_classes(self, project: str, edit: Any, *, annotator: str | None = None) -> dict[str, Any]:
        with self.sessions.begin() as session:
            row = self.project(session, project)
            result = edit(session, row.id, self.user_id(session, annotator, "manage_projects"))
            project_id = row.id
        self._forget_state(project_id)
        return result

    def class_usage(self, project: str, label: str) -> dict[str, Any]:
        from core import class_admin

        return self._edit_classes(project, lambda s, pid, _: {"label": label, **class_admin.usage(
            s, class_id=class_admin.find_class(s, project_id=pid, label=label).id)})

    def add_class(self, project: str, name: str, *, description: str | None = None,
                  prompts: Sequence[str] | None = None, annotator: str | None = None) -> dict[str, Any]:
        from core import class_admin

        spec = ClassSpec(name, (description or "").strip() or None, class_admin.clean_prompts(prompts))
        return self._edit_classes(project, lambda s, pid, _: class_admin.add_class(s, project_id=pid, spec=spec),
                                  annotator=annotator)

    def rename_class(self, project: str, label: str, new_name: str, *, annotator: str | None = None) -> dict[str, Any]:
        from core import class_admin

        return self._edit_classes(project, lambda s, pid, _: class_admin.rename_class(
            s, project_id=pid, label=label, new_name=new_name), annotator=annotator)

    def describe_class(self, project: str, label: str, *, description: str | None = None,
                       prompts: Sequence[str] | None = None, annotator: str | None = None) -> dict[str, Any]:
        from core import class_admin

        return self._edit_classes(project, lambda s, pid, _: class_admin.describe_class(
            s, project_id=pid, label=label, description=description, prompts=prompts), annotator=annotator)

    def merge_classes(self, project: str, source: str, target: str, *, annotator: str | None = None) -> dict[str, Any]:
        from core import class_admin

        return self._edit_classes(project, lambda s, pid, uid: class_admin.merge_classes(
            s, project_id=pid, source=source, target=target, user_id=uid), annotator=annotator)

    def delete_class(self, project: str, label: str, *, annotator: str | None = None) -> dict[str, Any]:
        from core import class_admin

        return self._edit_classes(project, lambda s, pid, uid: class_admin.delete_class(
            s, project_id=pid, label=label, user_id=uid), annotator=annotator)

    def item(self, project: str, image_id: int, *, k: int = 5) -> dict[str, Any]:
        """One image as the labeling queue shows it: file, top-k of the live classifier, label now."""
        state = self.state(project)
        with state.lock:
            top = state.top_k(image_id, k)
        with self.sessions.begin() as session:
            image = annotate.check_image(session, project_id=state.project_id, image_id=image_id)
            current = repo.current_label(session, image_id=image_id)
            names = {c.id: c.name for c in repo.classes_of(session, project_id=state.project_id, include_archived=True)}
            return {"image_id": image.id, "path": image.original_path, "file_path": image.file_path,
                    "top": [{"label": names.get(lid), "confidence": p} for lid, p in top],
                    "label": names.get(current.label_id) if current else None}

    def progress(self, project: str) -> dict[str, Any]:
        """Counts from the live state (no table scan): labeled, images, embedded, skipped."""
        state = self.state(project)
        with state.lock:
            return {"labeled": int((state.labels >= 0).sum()) + len(state.labeled_unembedded),
                    "images": len(state.image_ids) + len(state.unembedded), "embedded": len(state.image_ids),
                    "skipped": len(state.skipped), "strategy": state.strategy,
                    "model_version": state.classifier.version if state.classifier else None}

    def image_files(self, image_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        from core.browse import image_files

        with self.sessions.begin() as session:
            return image_files(session, image_ids=image_ids)

    def thumbnail(self, image: dict[str, Any], *, size: int) -> Path:
        """The display copy of an image_files() entry; raises ImageError when it cannot be read."""
        return self.workspace().thumbs.path(sha256=image["sha256"], file_path=image["file_path"], size=size)

    def prefetch_thumbnails(self, images: Sequence[dict[str, Any]], *, size: int) -> list[Path | None]:
        """Start making these thumbnails in the background; returns those already made (else None)."""
        return self.workspace().thumbs.prefetch([(i["sha256"], i["file_path"]) for i in images], size=size)

    def grid(self, project: str, label: str, *, page: int = 0, page_size: int = 48,
             include_labeled: bool = False) -> dict[str, Any]:
        """A page of images predicted as `label`, most confident first, near-duplicates together."""
        from core import browse

        browse.check_page(page, page_size)
        state = self.state(project)
        with self.sessions.begin() as session:
            label_id = annotate.class_id(session, project_id=state.project_id, label=label)
        with state.lock:
            if state.probs is None:
                return {"label": label, "page": 0, "pages": 1, "total": 0, "items": []}
            rows, confidence = browse.predicted_as(state.probs, state.labels, state.label_ids.index(label_id),
                                                   include_labeled=include_labeled)
            found = browse.paginate(rows, confidence, state.embeddings, page=page, page_size=page_size)
            ids, groups = state.image_ids[found.positions], state.image_ids[found.groups]
        files = self.image_files(ids.tolist())
        items = [{**files[int(i)], "image_id": int(i), "confidence": float(c), "group": int(g)}
                 for i, c, g in zip(ids, found.scores, groups, strict=True)]
        return {"label": label, "page": found.page, "pages": found.pages, "total": found.total, "items": items}

    def search(self, project: str, text: str, *, limit: int = 48, unlabeled_only: bool = False) -> dict[str, Any]:
        """Images whose cached embeddings best match `text` (CLIP text-to-image cosine)."""
        from core import browse

        state = self.state(project)
        with self.sessions.begin() as session:
            spec = self.model_spec(session.get(Project, state.project_id))
        model = self.load_model(spec)
        if state.model_id != model.model_id:
            raise InvalidInput(f"text: the images were embedded with {state.model_id or 'no model yet'}, not "
                               f"{model.model_id}; embed the project with this model to search it")
        query = browse.query_vector(model.encode_texts, text)
        with state.lock:
            rows, scores = browse.search(state.embeddings, state.labels, query, limit=limit,
                                         unlabeled_only=unlabeled_only)
            ids, labels = state.image_ids[rows], state.labels[rows]
            names = [None if j < 0 else state.label_ids[j] for j in labels.tolist()]
        files, classes = self.image_files(ids.tolist()), self._class_names(state)
        items = [{**files[int(i)], "image_id": int(i), "score": float(s), "label": classes.get(n)}
                 for i, s, n in zip(ids, scores, names, strict=True)]
        return {"text": text, "items": items}

    def dashboard(self, project: str) -> dict[str, Any]:
        """Counts per class and source, progress, estimated accuracy, efficiency curve, throughput."""
        from core import dashboard

        state = self.state(project)
        with state.lock:
            model_counts: dict[int, int] = {}
            if state.probs is not None and state.probs.shape[1]:
                top = np.bincount(state.probs[state.labels < 0].argmax(axis=1), minlength=len(state.label_ids))
                model_counts = {state.label_ids[j]: int(c) for j, c in enumerate(top)}
            classifier = state.classifier.report() if state.classifier else None
        with self.sessions.begin() as session:
            classes = dashboard.class_counts(session, project_id=state.project_id, model_counts=model_counts)
            accuracy = dashboard.pseudo_label_accuracy(session, project_id=state.project_id)
            ordered = dashboard.labels_in_order(session, project_id=state.project_id)
            people = dashboard.throughput(session, project_id=state.project_id)
        sources = {s: sum(c[s] for c in classes) for s in ("human", "import", "review", "model")}
        return {"progress": self.progress(project), "classes": classes, "sources": sources, "accuracy": accuracy,
                "classifier": classifier, "curve": self._efficiency_curve(state, ordered), "throughput": people}

    def _efficiency_curve(self, state: ProjectState, ordered: list[tuple[int, int]]) -> list[dict[str, Any]]:
        from core import dashboard

        key = (state.project_id, len(ordered), ordered[-1][0] if ordered else 0)
        workspace = self.workspace()
        if key not in workspace.curves:
            with state.lock:
                kept = [(state.position[i], state.label_ids.index(lid)) for i, lid in ordered
                        if i in state.position and lid in state.label_ids]
                rows = np.array([r for r, _ in kept], dtype=np.int64)
                labels = np.array([y for _, y in kept], dtype=np.int64)
                emb, head, scale, k = state.embeddings, state.head, state.logit_scale, len(state.label_ids)
            workspace.curves[key] = dashboard.efficiency_curve(
                emb, rows, labels, num_classes=k, text_head=head, logit_scale=scale,
                rng=np.random.default_rng([state.project_id, rows.size]))
        return workspace.curves[key]

    # -- team ----------------------------------------------------------------------------------

    def team_mode(self) -> bool:
        with self.sessions.begin() as session:
            return repo.team_mode(session)

    def authenticate(self, name: str, password: str) -> bool:
        with self.sessions.begin() as session:
            user = repo.user_by_name(session, name=name)
            return bool(user and not user.disabled and auth.verify_password(user.password_hash, password))

    def add_user(self, name: str, *, role: str, password: str, actor: str | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 100 or any(c.isspace() for c in name):
            raise InvalidInput("name: 1 to 100 characters, no spaces")
        with self.sessions.begin() as session:
            self.actor(session, actor, "manage_users")
            if repo.user_by_name(session, name=name) is not None and repo.user_by_name(
                    session, name=name).password_hash is not None:
                raise InvalidInput(f"name: a user named '{name}' already exists")
            user = repo.get_or_create_user(session, name=name, role=auth.check_role(role))
            user.role, user.password_hash, user.disabled = role, auth.hash_password(password), False
            return {"name": user.name, "role": user.role}

    def list_users(self, *, actor: str | None = None) -> list[dict[str, Any]]:
        with self.sessions.begin() as session:
            self.actor(session, actor, "manage_users")
            return [{"name": u.name, "role": u.role, "disabled": u.disabled, "password": u.password_hash is not None,
                     "created_at": u.created_at.isoformat()} for u in session.scalars(select(User).order_by(User.name))]

    def disable_user(self, name: str, *, actor: str | None = None) -> dict[str, Any]:
        with self.sessions.begin() as session:
            self.actor(session, actor, "manage_users")
            user = repo.user_by_name(session, name=name)
            if user is None:
                raise NotFound(f"name: no user named '{name}'")
            user.disabled = True
            released = leases.release_all(session, user_id=user.id)
            return {"name": name, "disabled": True, "leases_released": released}

    def release_leases(self, annotator: str, project: str | None = None) -> int:
        """Logout or tab closed: every item this annotator held goes back to the pool now."""
        with self.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            if user is None:
                return 0
            project_id = self.project(session, project).id if project else None
            return leases.release_all(session, user_id=user.id, project_id=project_id)

    def renew_leases(self, annotator: str) -> int:
        """Heartbeat while the annotator works: their items stay theirs."""
        with self.sessions.begin() as session:
            user = repo.user_by_name(session, name=annotator)
            return 0 if user is None else leases.renew_all(session, user_id=user.id)

    def set_overlap(
        self, project: str, *, share: float, annotators: int = 2, actor: str | None = None,
    ) -> dict[str, Any]:
        """Send `share` of the items (0..1) to `annotators` people each, blind to each other."""
        if not 0.0 <= share <= 1.0:
            raise InvalidInput(f"overlap: a share between 0 and 1, got {share}")
        if not 2 <= annotators <= 10:
            raise InvalidInput(f"annotators: between 2 and 10 people per overlap item, got {annotators}")
        with self.sessions.begin() as session:
            self.actor(session, actor, "manage_projects")
            row = self.project(session, project)
            row.settings = {**(row.settings or {}), "overlap": share, "overlap_annotators": annotators}
            return {"project": row.name, "overlap": share, "overlap_annotators": annotators}

    def agreement(self, project: str, *, actor: str | None = None) -> dict[str, Any]:
        with self.sessions.begin() as session:
            self.actor(session, actor, "view")
            return team.agreement(session, project_id=self.project(session, project).id)

    def review_queue(self, project: str, *, actor: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Overlap conflicts (who said what) and label-error suspects (with who labeled them)."""
        with self.sessions.begin() as session:
            self.actor(session, actor, "view")
            project_id = self.project(session, project).id
            conflicts = team.conflicts(session, project_id=project_id, limit=limit)
        found = self.suspects(project, limit=limit)
        with self.sessions.begin() as session:
            who = {r.image_id: r.annotator_id for r in repo.current_labels(session, project_id=project_id).values()}
            names = dict(session.execute(select(User.id, User.name)).all())
        for item in found["suspects"]:
            item["annotator"] = names.get(who.get(item["image_id"]))
        return {"conflicts": conflicts, **found}

    def resolve(self, project: str, *, image_id: int, label: str, reviewer: str | None = None) -> dict[str, Any]:
        """A reviewer's final word on an item (conflict or suspect): recorded with source 'review'."""
        state = self.state(project)
        with self.sessions.begin() as session:
            user = self.actor(session, reviewer, "review")
            label_id = annotate.class_id(session, project_id=state.project_id, label=label)
            annotate.check_image(session, project_id=state.project_id, image_id=image_id)
            current = repo.current_label(session, image_id=image_id)
            event = repo.append_event(session, project_id=state.project_id, image_id=image_id, annotator_id=user.id,
                                      action="review", source="review", label_before_id=current.label_id if current
                                      else None, label_after_id=label_id)
            repo.set_current_label(session, event=event)
            repo.current_label(session, image_id=image_id).policy = "reviewer"
            event_id = event.id
        with state.lock:
            state.set_label(image_id, label_id)
            self._after_change(state)
        return {"event_id": event_id, "image_id": image_id, "label": label, "policy": "reviewer"}

    def history(self, project: str, *, user: str | None = None, action: str | None = None,
                image_id: int | None = None, limit: int = 200, actor: str | None = None) -> list[dict[str, Any]]:
        with self.sessions.begin() as session:
            self.actor(session, actor, "view")
            project_id = self.project(session, project).id
            user_id = None
            if user is not None:
                row = repo.user_by_name(session, name=user)
                if row is None:
                    raise NotFound(f"user: no user named '{user}'")
                user_id = row.id
            return team.history(session, project_id=project_id, user_id=user_id, action=action, image_id=image_id,
                                limit=min(max(limit, 1), 5000))
