"""The training use case: train and export a model from a project's labels (`clipmark train`, the
Export tab's "Train a model"), run an exported model on files (`clipmark classify`), and make an
exported model the project's classifier (its probabilities become the prediction run)."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.errors import InvalidInput, PermissionDenied
from core.export.names import safe_component
from core.store import repo
from core.usecases.context import Context
from core.usecases.jobs.results import JobStatus
from core.usecases.jobs.runner import Progress
from core.usecases.jobs.workspace import Workspace
from core.usecases.labeling.results import AccuracyEstimate
from core.usecases.labeling.states import ProjectStates
from core.usecases.models import ModelProvider
from core.usecases.scoring import PredictSummary
from core.usecases.training import card
from core.usecases.training.classify import classify_files, exported_probs
from core.usecases.training.data import Snapshot, check_labels, snapshot, split, training_labels
from core.usecases.training.evaluate import evaluate
from core.usecases.training.kinds import Built, Stopped, build_head, build_student
from core.usecases.training.results import KINDS, ClassifyReport, StudentOptions, TrainReport

Estimate = Callable[[str], AccuracyEstimate]
NO_ESTIMATE = "no audit estimate yet (no blind audit answered)"


class Training:
    def __init__(self, context: Context, models: ModelProvider, states: ProjectStates, workspace: Workspace, *,
                 estimate: Estimate | None = None) -> None:
        self.context, self.models, self.states, self.workspace = context, models, states, workspace
        self.estimate = estimate

    def train(self, project: str, *, out: str | Path, kind: str = "head", student: StudentOptions | None = None,
              holdout: float = 0.2, seed: int = 0, annotator: str | None = None, progress: bool = True,
              on_step: Callable[[int, int, float, float], bool] | None = None) -> TrainReport:
        """Train a `kind` model on the project's labels, write it into `out` (and `out`.zip)."""
        if kind not in KINDS:
            raise InvalidInput(f"--kind: {kind!r} is not a model kind; choose one of {', '.join(KINDS)}")
        started = time.perf_counter()
        with self.context.action(project, annotator=annotator, permission="export", write=False) as act:
            row = act.require_project()
            data = snapshot(act.session, row, self.states.get(act.session, row))
            spec = self.models.spec(row)
        check_labels(data)
        _, held = split(data.labels, holdout=holdout, seed=seed)
        train = np.flatnonzero(training_labels(data, held) >= 0)  # audits stay out, as in the live fit
        folder = _fresh_folder(out, resume=kind == "student" and bool(student and student.resume))
        if kind == "head":
            built = build_head(data, train, held, clip=self.models.for_embeddings(spec, data.model_id), folder=folder)
        else:
            hook = on_step or (_tqdm_hook() if progress else None)
            built = build_student(data, train, held, options=student or StudentOptions(), folder=folder,
                                  workdir=folder / "checkpoints", on_step=hook,
                                  max_pixels=self.context.settings.max_pixels)
        return self._finish(data, built, folder, train=train, held=held, seconds=time.perf_counter() - started)

    def _finish(self, data: Snapshot, built: Built, folder: Path, *, train: np.ndarray, held: np.ndarray,
                seconds: float) -> TrainReport:
        evaluation = evaluate(data.labels[held], built.held_probs.argmax(axis=1).astype(np.int64)
                              if held.size else np.zeros(0, np.int64), data.class_names,
                              picture=folder / "confusion_matrix.png")
        report = TrainReport(
            kind=built.config["kind"], project=data.project, folder=str(folder), zip_path=None,
            class_names=tuple(data.class_names), model_id=data.model_id, trained_on=int(train.size),
            pseudo_labels=built.pseudo_labels, label_sources=dict(data.sources), evaluation=evaluation,
            agreement=built.agreement, agreement_images=built.agreement_images, failed_images=tuple(built.failed),
            images_per_second=built.images_per_second, steps=built.steps, resumed_from=built.resumed_from,
            weights=built.weights, audit_estimate=self._estimate(data.project), seconds=seconds)
        config = {"name": folder.name, "class_names": data.class_names, "model_id": data.model_id,
                  "project": data.project, "held_out_accuracy": evaluation.accuracy, **built.config}
        card.write_config(folder, config)
        (folder / "README.md").write_text(card.model_card(report, config=config), encoding="utf-8")
        shutil.rmtree(folder / "checkpoints", ignore_errors=True) if built.config["kind"] == "head" else None
        return replace(report, zip_path=str(_zip(folder)), seconds=seconds)

    def _estimate(self, project: str) -> str:
        if self.estimate is None:
            return NO_ESTIMATE
        found = self.estimate(project)
        interval = found.accuracy
        if interval.value is None:
            return NO_ESTIMATE
        return (f"{100 * interval.value:.1f}% (95% interval {100 * interval.low:.1f}% to {100 * interval.high:.1f}%) "
                f"from {interval.answered} answered blind audits of the pseudo-labels on {found.pool} unlabeled "
                f"images ({found.model_version or 'current classifier'})")

    def start_train(self, project: str, *, kind: str = "head", student: StudentOptions | None = None,
                    holdout: float = 0.2, annotator: str | None = None) -> JobStatus:
        """Train in the background (the web app): into <media>/exports/models (a folder the web app
        serves files from), zipped for download."""
        with self.context.action(project, annotator=annotator, permission="export", write=False):
            pass
        if kind not in KINDS:
            raise InvalidInput(f"kind: {kind!r} is not a model kind; choose one of {', '.join(KINDS)}")
        if not isinstance(holdout, (int, float)) or not 0.0 <= holdout < 1.0:  # before the job, not in it
            raise InvalidInput(f"holdout: a fraction in [0, 1), got {holdout!r}")
        # The folder is served to logged-in browsers (for the zip): a random part keeps its name unguessable
        # (an annotator must not fetch an admin's model by its time stamp) and two runs apart.
        stamp = f"-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"
        name = safe_component(project.replace(" ", "_"), fallback="project") + stamp  # <= 150 + 41 bytes
        out = self.workspace.media_dir / "exports" / "models" / name

        def work(progress: Progress) -> dict[str, object] | None:
            progress.stage("train")

            def step(done: int, total: int, loss: float, rate: float) -> bool:
                progress(done, total)
                return not progress.cancelled()

            try:
                return {"train": self.train(project, out=out, kind=kind, student=student, holdout=holdout,
                                            annotator=annotator, progress=False, on_step=step)}
            except Stopped as stopped:  # cancelled: the runner marks the job cancelled
                progress.note(str(stopped))
                return None

        return self.workspace.jobs.submit(kind="train", project=project, work=work, owner=annotator)

    def classify(self, model: str | Path, inputs: Sequence[str | Path], *, out: str | Path | None = None,
                 top_k: int = 3, progress: bool = True) -> ClassifyReport:
        """Run an exported model on files and folders; write path,label,confidence,top-k to `out`."""
        return classify_files(model, inputs, out=out, top_k=top_k, progress=progress,
                              max_pixels=self.context.settings.max_pixels)

    def set_classifier(self, project: str, model: str | Path, *, annotator: str | None = None) -> PredictSummary:
        """Make an exported model the project's classifier: its probabilities on every image become the
        prediction run ("exported:<name>"), and the folder is remembered in the project's settings
        (`predict_exported` runs it again, e.g. after an import)."""
        return self._predict(project, annotator=annotator, model=model)

    def _model_folder(self, model: str | Path, *, annotator: str | None) -> str:
        """The resolved folder. A person acting through the web app names only a model the web app
        trained (under <media>/exports/models): the server reads no other folder for them. The same
        answer for a folder elsewhere and one that does not exist."""
        refused = PermissionDenied("model: only a model trained in the web app can be chosen here; "
                                   "the command line takes any folder")
        try:
            folder = Path(model).resolve()
        except (OSError, ValueError) as exc:  # a NUL byte, a loop of links
            if annotator is not None:
                raise refused from exc
            raise InvalidInput(f"--model: not a usable folder name: {exc}") from exc
        if annotator is not None:
            root = (self.workspace.media_dir / "exports" / "models").resolve()
            if not (folder.is_relative_to(root) and folder != root and folder.is_dir()):
                raise refused
        return str(folder)

    def predict_exported(self, project: str, *, annotator: str | None = None) -> PredictSummary:
        """Store the project's exported classifier's probabilities on every image as a prediction run."""
        return self._predict(project, annotator=annotator, model=None)

    def _predict(self, project: str, *, annotator: str | None, model: str | Path | None) -> PredictSummary:
        with self.context.action(project, annotator=annotator, permission="manage_projects") as act:
            row = act.require_project()  # the role is checked first: the folder's answer is for those who may
            folder = (self._model_folder(model, annotator=annotator) if model is not None
                      else (row.settings or {}).get("classifier_dir"))
            if not folder:
                raise InvalidInput(f"project '{project}' has no exported classifier; set one with "
                                   "`clipmark set-classifier --model DIR`")
            classes = repo.classes_of(act.session, project_id=row.id)
            images = [(i.id, i.file_path) for i in repo.images_of(act.session, project_id=row.id) if i.file_path]
            ids, probs, version = exported_probs(folder, [c.name for c in classes], images,
                                                 max_pixels=self.context.settings.max_pixels)
            row.settings = {**(row.settings or {}), "classifier_dir": folder}
            run = repo.add_prediction_run(act.session, project_id=row.id, model_id=version, model_version=version,
                                          prompts_hash=None, label_ids=[c.id for c in classes], image_ids=ids,
                                          probs=probs)
            return PredictSummary(run.id, len(ids), version, version, None)


def _fresh_folder(out: str | Path, *, resume: bool) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"--out: {folder} exists and is not a folder")
    if folder.is_dir() and any(p.name != "checkpoints" for p in folder.iterdir()) and not resume:
        raise InvalidInput(f"--out: {folder} is not empty; choose a new folder (or --resume a student run)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only place, a file where a parent folder should be
        raise InvalidInput(f"--out: cannot create {folder}: {exc.strerror or exc}") from exc
    return folder


def _zip(folder: Path) -> Path:
    partial = shutil.make_archive(str(folder) + ".part", "zip", root_dir=folder.parent, base_dir=folder.name)
    target = folder.with_name(folder.name + ".zip")
    Path(partial).replace(target)
    return target


def _tqdm_hook() -> Callable[[int, int, float, float], bool]:
    from tqdm.auto import tqdm

    bar = tqdm(unit="step", desc="training")

    def step(done: int, total: int, loss: float, rate: float) -> bool:
        bar.total = total
        bar.n = done
        bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{rate:.0f}", refresh=False)
        bar.refresh()
        return True

    return step
