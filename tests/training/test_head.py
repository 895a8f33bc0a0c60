"""The head model: one ONNX graph gives the in-process classifier's probabilities; `classify` and
`set-classifier` agree with the stored predictions; the card shows the report's numbers."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from core.cli import main
from core.models.onnx_runtime import OnnxClassifier, preprocess
from core.store import repo
from core.store.schema import Prediction

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def head_folder(project_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("head") / "model"
    assert main(["train", "--db", project_db, "--project", "c", "--out", str(out), "--holdout", "0"]) == 0
    return out


def _files(service) -> tuple[list[int], list[str]]:
    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="c")
        images = repo.images_of(session, project_id=project.id)
        return [i.id for i in images], [i.file_path for i in images]


def _predictions(session, run_id: int) -> list[Prediction]:
    return list(session.scalars(select(Prediction).where(Prediction.run_id == run_id)))


def test_onnx_head_equals_the_in_process_classifier(service, head_folder: Path) -> None:
    import torch

    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="c")
        state = service.states.get(session, project)
    assert state.classifier is not None and state.classifier.weights is not None  # adapted: Delta, offset, gate
    clip = service.models.load(service.models.spec())
    _, paths = _files(service)
    pictures = [Image.open(p).convert("RGB") for p in paths]
    embeddings = clip.encode_images(torch.stack([clip.preprocess(p) for p in pictures]))
    expected = state.classifier.predict_proba(embeddings)
    runner = OnnxClassifier.load(head_folder)
    pixels = np.stack([preprocess(p, runner.config["preprocess"]) for p in pictures])
    got = runner.run(pixels)
    assert got.shape == (100, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert runner.run(pixels[:3]).shape == (3, 10)  # the batch axis is dynamic


def test_classify_agrees_with_the_stored_predictions(service, head_folder: Path, tmp_path: Path) -> None:
    ids, paths = _files(service)
    out = tmp_path / "predictions.csv"
    assert main(["classify", "--model", str(head_folder), *paths, "--out", str(out), "--top-k", "3"]) == 0
    rows = {row["path"]: row for row in csv.DictReader(out.open())}
    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="c")
        run = repo.latest_run(session, project_id=project.id)
        names = repo.class_names(session, project_id=project.id)
        stored = {p.image_id: names[p.label_id] for p in _predictions(session, run.id)}
    assert run.model_version.startswith("adapted")
    assert len(stored) == 100
    assert len(rows) == 100
    for image_id, path in zip(ids, paths, strict=True):
        assert rows[path]["label"] == stored[image_id], path
        assert rows[path]["top1"] == rows[path]["label"]


def test_set_classifier_stores_the_exported_models_predictions(service, head_folder: Path, tmp_path: Path) -> None:
    summary = service.training.set_classifier("c", head_folder)
    assert summary.images == 100 and summary.model_version == f"exported:{head_folder.name}"
    report = service.training.classify(head_folder, [Path(p) for p in _files(service)[1]], progress=False)
    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="c")
        run = repo.latest_run(session, project_id=project.id)
        names = repo.class_names(session, project_id=project.id)
        by_path = {i.id: i.file_path for i in repo.images_of(session, project_id=project.id)}
        stored = {by_path[p.image_id]: names[p.label_id] for p in _predictions(session, run.id)}
        assert project.settings["classifier_dir"] == str(head_folder.resolve())
    assert {p.path: p.label for p in report.predictions} == stored
    assert service.training.predict_exported("c").images == 100


def test_the_card_and_the_report_show_the_same_numbers(service, tmp_path: Path) -> None:
    report = service.training.train("c", out=tmp_path / "held", holdout=0.3, seed=1)
    evaluation = report.evaluation
    assert evaluation.images == 20 and report.trained_on == 40  # 6 per class: 2 held out, 4 trained on
    assert sum(sum(row) for row in evaluation.confusion) == 20
    assert np.trace(np.array(evaluation.confusion)) == round(evaluation.accuracy * 20)
    readme = (tmp_path / "held" / "README.md").read_text()
    assert f"Held-out accuracy: {100 * evaluation.accuracy:.1f}% on 20 human labels" in readme
    low, high = evaluation.interval
    assert f"95% interval {100 * low:.1f}% to {100 * high:.1f}%" in readme
    for score in evaluation.per_class:
        assert f"| {score.name} | {score.support} | {score.correct} |" in readme
    assert "label sources: import: 60" in readme
    assert "no audit estimate yet" in readme and report.audit_estimate in readme
    assert (tmp_path / "held" / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((tmp_path / "held" / "config.json").read_text())
    assert config["class_names"][:2] == ["airplane", "automobile"] and config["opset"] == 17
    assert config["held_out_accuracy"] == evaluation.accuracy and "onnxruntime" in config["versions"]
    with zipfile.ZipFile(report.zip_path) as archive:
        assert {"held/model.onnx", "held/head.safetensors", "held/config.json", "held/README.md",
                "held/confusion_matrix.png"} <= set(archive.namelist())


def test_classify_imports_no_torch(head_folder: Path, tmp_path: Path, cifar_dir: Path) -> None:
    image = next(cifar_dir.rglob("*.jpg"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    code = ("import sys; from core.cli import main; "
            f"rc = main(['classify', '--model', {str(head_folder)!r}, {str(image)!r}, {str(bad)!r}]); "
            "assert rc == 0; assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and "broken.jpg" in done.stderr
    assert json.loads(done.stdout)["predictions"][0]["path"] == str(image)


def test_a_second_batch_is_scored_by_the_exported_classifier(service, head_folder: Path, cifar_dir: Path,
                                                             tmp_path: Path) -> None:
    """After set-classifier, an import job scores the new images with the exported model too."""
    from tests.training.conftest import copy_cifar

    service.training.set_classifier("c", head_folder)
    batch = copy_cifar(cifar_dir, tmp_path / "second", start=20, count=1, classes=["cat", "dog"])
    job = service.jobs.start_import("c", [batch], embed=True)
    done = service.jobs.wait(job.job_id, timeout=300)
    assert done.status == "done", done
    exported = done.result["exported"]  # type: ignore[index]
    assert exported["images"] == 102 and exported["model_version"] == f"exported:{head_folder.name}"
    with service.context.read_sessions.begin() as session:
        project = repo.project_by_name(session, name="c")
        assert repo.latest_run(session, project_id=project.id).model_version == exported["model_version"]


HOSTILE = "<img src=x onerror=alert(1)>|**x**[y](http://e)\nz"


def test_user_text_is_escaped_in_the_card_the_web_report_and_the_predictions_csv(service, head_folder: Path,
                                                                                tmp_path: Path) -> None:
    """Project and class names are user text: the model card and the web app's report (Markdown) show
    them literally, and `classify --out` writes them so a spreadsheet does not run them."""
    from dataclasses import replace

    from core.usecases.training.card import model_card
    from webapp.views.export import report_markdown

    report = service.training.train("c", out=tmp_path / "m", holdout=0.3, seed=1)
    first = replace(report.evaluation.per_class[0], name=HOSTILE)
    hostile = replace(report, project=HOSTILE, class_names=(HOSTILE, *report.class_names[1:]),
                      evaluation=replace(report.evaluation, per_class=(first, *report.evaluation.per_class[1:])))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    escaped = r"\<img src=x onerror=alert\(1\)\>\|\*\*x\*\*\[y\]\(http://e\) z"
    for text in (model_card(hostile, config=config), report_markdown(hostile)):
        assert not re.search(r"(?<!\\)<img", text) and "](http" not in text and "**x**" not in text
        assert f"| {escaped} | {first.support} |" in text and escaped in text
    model = tmp_path / "hostile-model"
    model.mkdir()
    for item in head_folder.iterdir():
        (model / item.name).write_bytes(item.read_bytes())
    config = json.loads((model / "config.json").read_text())
    config["class_names"] = ["=HYPERLINK(\"http://e\")", *config["class_names"][1:]]
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "p.csv"
    assert main(["classify", "--model", str(model), *_files(service)[1][:20], "--out", str(out), "--top-k", "10"]) == 0
    rows = list(csv.DictReader(out.open()))
    cells = [value for row in rows for value in row.values()]
    assert "'=HYPERLINK(\"http://e\")" in cells and not any(value.startswith("=") for value in cells)


def copied_service(project_db: str, tmp_path: Path):
    """A service over a copy of the module's project, for tests that change it (users, classes)."""
    import sqlite3

    from core.config import Settings
    from core.service import Service

    with sqlite3.connect(project_db) as source, sqlite3.connect(tmp_path / "p.sqlite") as copy:
        source.backup(copy)  # the WAL's pages too
    return Service(Settings(db=str(tmp_path / "p.sqlite"), media_dir=tmp_path / "media", model="clipmark-tiny",
                            pretrained=None))


def test_a_web_user_chooses_only_models_the_web_app_trained(project_db: str, head_folder: Path,
                                                            tmp_path: Path) -> None:
    """The server reads files only inside configured roots: through the web app (a named user) the
    classifier folder must lie under <media>/exports/models, where the web app trains; the command
    line (no user) takes any folder."""
    import shutil

    from core.errors import PermissionDenied

    service = copied_service(project_db, tmp_path)
    try:
        service.team.add_user("boss", role="admin", password="correct horse")
        inside = tmp_path / "media" / "exports" / "models" / "m"
        shutil.copytree(head_folder, inside)
        (tmp_path / "media" / "exports" / "models" / "link").symlink_to(head_folder)
        service.team.add_user("anna", role="annotator", password="correct horse", annotator="boss")
        with pytest.raises(PermissionDenied) as refused:  # the role is checked before any folder
            service.training.set_classifier("c", inside, annotator="anna")
        assert "trained in the web app" not in str(refused.value)
        for folder in (head_folder, Path("/etc"), inside.parent, inside.parent / "missing", inside.parent / "link",
                       inside / ".." / ".." / "..", "/tmp/a\x00b"):
            with pytest.raises(PermissionDenied, match="only a model trained in the web app"):
                service.training.set_classifier("c", folder, annotator="boss")
        web = service.training.set_classifier("c", inside, annotator="boss")
        cli = service.training.set_classifier("c", head_folder)  # the command line: any folder
        assert web.images == cli.images > 0 and web.model_version == "exported:m"
    finally:
        service.close()


def test_an_import_stands_when_the_exported_classifier_no_longer_fits(project_db: str, head_folder: Path,
                                                                       cifar_dir: Path, tmp_path: Path) -> None:
    """A class added after set-classifier: the next import job still finishes and reports its import;
    the exported classifier's refusal is a note of the job, not its failure."""
    from tests.training.conftest import copy_cifar

    service = copied_service(project_db, tmp_path)
    try:
        service.training.set_classifier("c", head_folder)
        service.projects.add_class("c", "zebra")
        batch = copy_cifar(cifar_dir, tmp_path / "third", start=30, count=1, classes=["cat"])
        done = service.jobs.wait(service.jobs.start_import("c", [batch], embed=True).job_id, timeout=300)
        assert done.status == "done", done
        assert done.result["import"].imported == 1  # type: ignore[index]
        assert "zebra" in done.result["exported"]["error"]  # type: ignore[index]
        assert any("exported classifier was not run" in note for note in done.notes)
    finally:
        service.close()


def test_web_trained_models_land_in_unguessable_folders(service) -> None:
    """The web app's models are served to logged-in browsers (for the zip), so their folder names carry
    a random part: not the project and a time stamp alone, and two runs in one second stay apart."""
    jobs = [service.training.start_train("c", kind="head", holdout=0.0) for _ in range(2)]
    folders = []
    for job in jobs:
        done = service.jobs.wait(job.job_id, timeout=300)
        assert done.status == "done", done.error
        folders.append(Path(done.result["train"].folder))
    assert folders[0] != folders[1]
    for folder in folders:
        assert (folder.parent.parent.name, folder.parent.name) == ("exports", "models")
        assert re.fullmatch(r"c-head-\d{8}-\d{6}-[0-9a-f]{16}", folder.name)


@pytest.mark.parametrize(("fields", "named"), [
    ({"epochs": float("inf")}, "epochs"), ({"epochs": float("nan")}, "epochs"), ({"image_size": "big"}, "image size"),
    ({"holdout": 2.0}, "holdout"), ({"holdout": float("nan")}, "holdout"), ({"holdout": "x"}, "holdout"),
])
def test_the_train_endpoint_names_a_bad_number(service, fields: dict, named: str) -> None:
    """Any HTTP client can call ui_train with any values: each bad one is refused, naming its field,
    before a job starts."""
    from core.errors import InvalidInput
    from webapp.views.export import ui_start_train

    before = len(service.jobs.list())
    with pytest.raises(InvalidInput, match=named):
        ui_start_train(service, "c", "student", "mobilenetv3_small_100", **fields)
    assert len(service.jobs.list()) == before


def test_a_failed_web_training_job_reaches_the_page_as_a_clipmark_error(project_db: str, tmp_path: Path) -> None:
    """The job's error goes through the web app's one ClipmarkError -> gr.Error path (ctx.fn's
    to_gr_error, which HTML-escapes it: it can name classes), not a raw gr.Error."""
    from core.errors import ClipmarkError
    from webapp.views.export import ui_wait_train
    from webapp.wiring import to_gr_error

    service = copied_service(project_db, tmp_path)
    try:
        service.projects.create("<b>empty</b>", classes=["<i>a</i>", "b"])
        job = service.training.start_train("<b>empty</b>", kind="head", holdout=0.0)
        with pytest.raises(ClipmarkError, match="training failed") as caught:
            ui_wait_train(service, job.job_id)
        assert "<b>empty</b>" in str(caught.value) and "<b>" not in to_gr_error(caught.value).message
    finally:
        service.close()
