"""Training through the facade: the student run's report and card, and each bad input's message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import InvalidInput, ModelLoadError
from core.usecases.training.results import StudentOptions
from tests.training.conftest import TINY, copy_cifar

SMALL = StudentOptions(name="mobilenetv3_small_100", epochs=1, image_size=32, batch_size=32, num_workers=0,
                       pretrained=False)


def test_a_student_run_reports_and_documents_what_it_did(service, tmp_path: Path) -> None:
    with service.context.read_sessions.begin() as session:
        from core.store import repo

        project = repo.project_by_name(session, name="c")
        broken = next(i.file_path for i in repo.images_of(session, project_id=project.id))
    saved = Path(broken).read_bytes()
    Path(broken).write_bytes(b"\xff\xd8 not a jpeg any more")
    try:
        report = service.training.train("c", out=tmp_path / "student", kind="student", student=SMALL, progress=False)
    finally:
        Path(broken).write_bytes(saved)
    assert report.kind == "student" and report.trained_on == 50 and report.evaluation.images == 10
    assert report.failed_images == (broken,) and report.steps >= 1 and report.images_per_second > 0
    assert report.agreement is not None and report.agreement_images + report.pseudo_labels <= 40
    readme = (tmp_path / "student" / "README.md").read_text()
    assert f"Held-out accuracy: {100 * report.evaluation.accuracy:.1f}% on 10 human labels" in readme
    assert f"Agreement with the CLIP classifier on {report.agreement_images} held-out unlabeled" in readme
    assert f"{100 * report.agreement:.1f}%" in readme and "random init" in readme
    assert "Images that failed to decode during training (skipped): 1." in readme
    assert {"model.onnx", "model.safetensors", "config.json", "README.md"} <= {
        p.name for p in (tmp_path / "student").iterdir()}
    result = service.training.classify(tmp_path / "student", [broken], progress=False)
    assert len(result.predictions) == 1 and result.predictions[0].label in report.class_names


def test_an_unknown_student_name_is_refused_with_close_matches(service, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"timm has no model 'resnet181'.*resnet18"):
        service.training.train("c", out=tmp_path / "s", kind="student",
                               student=StudentOptions(name="resnet181", pretrained=False))


def test_kind_and_out_folder_are_checked(service, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"--kind: 'big' is not a model kind; choose one of head, student"):
        service.training.train("c", out=tmp_path / "x", kind="big")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match=r"--out: .*full is not empty"):
        service.training.train("c", out=tmp_path / "full")
    with pytest.raises(InvalidInput, match=r"--holdout: a fraction in \[0, 1\)"):
        service.training.train("c", out=tmp_path / "h", holdout=1.5)


def _project(service, cifar_dir: Path, root: Path, *, name: str, classes: str, labeled: list[str]) -> None:
    from core.cli import main

    db = str(service.settings.db)
    assert main(["init", "--db", db, "--project", name, "--labels", classes]) == 0
    copy_cifar(cifar_dir, root / "l", start=0, count=3, classes=labeled)
    copy_cifar(cifar_dir, root / "u", start=3, count=2, classes=classes.split(","))
    assert main(["import", "--db", db, "--project", name, str(root / "l"), "--labels-from", "folders"]) == 0
    assert main(["import", "--db", db, "--project", name, str(root / "u")]) == 0
    assert main(["embed", "--db", db, "--project", name, *TINY]) == 0


def test_fewer_than_two_labeled_classes_and_unlabeled_classes_are_named(service, cifar_dir: Path,
                                                                        tmp_path: Path) -> None:
    _project(service, cifar_dir, tmp_path / "one", name="one", classes="cat,dog", labeled=["cat"])
    with pytest.raises(InvalidInput, match=r"project 'one': 1 of 2 classes have human labels; training needs at "
                                           r"least two labeled classes"):
        service.training.train("one", out=tmp_path / "m1")
    _project(service, cifar_dir, tmp_path / "three", name="three", classes="cat,dog,frog", labeled=["cat", "dog"])
    with pytest.raises(InvalidInput, match=r"project 'three': classes with no human label: frog"):
        service.training.train("three", out=tmp_path / "m3")


def test_missing_and_corrupt_model_folders_are_named(service, tmp_path: Path, cifar_dir: Path) -> None:
    image = next(cifar_dir.rglob("*.jpg"))
    with pytest.raises(ModelLoadError, match=r"--model: .*nowhere is not a folder"):
        service.training.classify(tmp_path / "nowhere", [image])
    model = tmp_path / "model"
    report = service.training.train("c", out=model, holdout=0)
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match=r"--model: .*broken/model.onnx cannot be loaded"):
        service.training.classify(broken, [image])
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config.json is not valid JSON"):
        service.training.classify(broken, [image])
    (broken / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"broken/config.json is missing; not an exported clipmark model"):
        service.training.classify(broken, [image])
    with pytest.raises(InvalidInput, match=r"--top-k: a whole number from 1 to 20"):
        service.training.classify(model, [image], top_k=0)
    assert report.zip_path and Path(report.zip_path).is_file()


@pytest.mark.parametrize(("change", "named"), [
    ({"preprocess": "x"}, "preprocess must be an object"),
    ({"class_names": "ab"}, "class_names must be a list"),
    ({"class_names": ["a", "b"]}, "scores 10 classes; config.json names 2"),
    ({"preprocess.mean": None}, "preprocess.mean must be three finite numbers"),
    ({"preprocess.std": [0.2, 0.0, 0.2]}, "preprocess.std must be three finite numbers > 0"),
    ({"preprocess.resize_size": 0}, "preprocess.resize_size must be a whole number"),
    ({"preprocess.crop_size": 64}, "takes images of shape"),
    ({"preprocess.interpolation": "lanczos9"}, "preprocess.interpolation must be one of"),
])
def test_a_config_that_does_not_fit_its_graph_is_named(service, tmp_path: Path, cifar_dir: Path,
                                                       change: dict, named: str) -> None:
    """Every field classify reads is checked when the folder is loaded, and the graph's input and
    output against them: a clear error naming config.json, not a traceback from the first batch."""
    import json

    model = tmp_path / "model"
    if not model.exists():
        service.training.train("c", out=model, holdout=0)
    config = json.loads((model / "config.json").read_text())
    for key, value in change.items():
        if key.startswith("preprocess."):
            config["preprocess"][key.split(".", 1)[1]] = value
        else:
            config[key] = value
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=named):
        service.training.classify(model, [next(cifar_dir.rglob("*.jpg"))])


def test_student_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match=r"--epochs: a whole number from 1 to 1000, got 0"):
        StudentOptions(epochs=0)
    with pytest.raises(InvalidInput, match=r"--image-size: a whole number from 16 to 1024, got 8"):
        StudentOptions(image_size=8)


def test_a_stopped_student_run_exports_nothing_and_resumes(service, tmp_path: Path) -> None:
    from core.usecases.training.kinds import Stopped

    out = tmp_path / "stopped"
    with pytest.raises(Stopped, match=r"training stopped at step 1; nothing was exported; .*--resume"):
        service.training.train("c", out=out, kind="student", student=SMALL, progress=False,
                               on_step=lambda step, total, loss, rate: False)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]
    steps: list[int] = []
    options = StudentOptions(**{**SMALL.__dict__, "resume": True})
    report = service.training.train("c", out=out, kind="student", student=options, progress=False,
                                    on_step=lambda step, total, loss, rate: steps.append(step) or True)
    assert report.resumed_from == 1 and steps[0] == 2 and (out / "model.onnx").is_file()
    assert "resumed from step 1" in (out / "README.md").read_text()


def test_the_cli_names_bad_input_on_one_line(project_db: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    assert main(["train", "--db", project_db, "--project", "c", "--out", str(tmp_path / "s"), "--kind", "student",
                 "--student", "resnet181"]) == 2
    assert "timm has no model 'resnet181'" in capsys.readouterr().err
    assert main(["classify", "--model", str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["set-classifier", "--db", project_db, "--project", "c", "--model", str(tmp_path)]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_a_bad_out_is_named_before_any_work(service, tmp_path: Path, cifar_dir: Path) -> None:
    """classify --out naming a folder, or a place under a file, and train --out under a file: refused
    up front, naming --out (classify used to fail only after classifying everything)."""
    image = next(cifar_dir.rglob("*.jpg"))
    model = tmp_path / "model"
    service.training.train("c", out=model, holdout=0)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out, message in ((tmp_path, "is a folder"), (blocker / "p.csv", "cannot create")):
        with pytest.raises(InvalidInput, match=f"--out: .*{message}"):
            service.training.classify(model, [image], out=out)
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(InvalidInput, match="--out: cannot create"):
        service.training.train("c", out=blocker / "m", holdout=0)
