"""End to end through the CLI on the real CIFAR-10 JPEGs with a tiny real open_clip model."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.cli import main
from core.config import Settings
from core.service import Service
from core.store.schema import Embedding, Event, PredictionRun

TINY = ["--model", "clipmark-tiny", "--pretrained", "none"]
CLASSES = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"


def _cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture()
def small_cifar(cifar_dir: Path, tmp_path: Path) -> Path:
    """Ten images per class, copied so tests may add files beside them."""
    root = tmp_path / "cifar"
    for class_dir in sorted(p for p in cifar_dir.iterdir() if p.is_dir()):
        (root / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:10]:
            shutil.copy(image, root / class_dir.name / image.name)
    return root


def test_cli_pipeline_to_csv(small_cifar: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "p.sqlite")
    assert _cli("init", "--db", db, "--project", "c", "--labels", CLASSES) == 0
    assert _cli("import", "--db", db, "--project", "c", str(small_cifar)) == 0
    assert "imported 100, skipped 0 duplicates, failed 0" in capsys.readouterr().out
    assert _cli("import", "--db", db, "--project", "c", str(small_cifar)) == 0
    assert "imported 0, skipped 100 duplicates" in capsys.readouterr().out
    assert _cli("embed", "--db", db, "--project", "c", *TINY, "--batch-size", "16") == 0
    assert "embedded 100, cached 0, failed 0" in capsys.readouterr().out
    assert _cli("embed", "--db", db, "--project", "c", *TINY) == 0
    assert "embedded 0, cached 100" in capsys.readouterr().out
    assert _cli("predict", "--db", db, "--project", "c") == 0
    assert "predicted 100 images" in capsys.readouterr().out
    out = tmp_path / "labels.csv"
    assert _cli("export", "--db", db, "--project", "c", "--format", "csv", "--out", str(out)) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 100
    assert list(rows[0])[:6] == ["path", "sha256", "label", "source", "confidence", "model_id"]
    assert {r["source"] for r in rows} == {"model"}
    assert all(r["label"] in CLASSES.split(",") and 0 < float(r["confidence"]) <= 1 for r in rows)
    assert {r["model_id"] for r in rows} == {"clipmark-tiny@random:0"}
    capsys.readouterr()
    assert _cli("status", "--db", db, "--project", "c", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["images"] == 100 and status["embedded"] == {"clipmark-tiny@random:0": 100}
    assert status["latest_prediction"]["model_version"] == "zero-shot"


def test_labels_from_folders_and_csv_count_as_import_annotations(small_cifar: Path, cifar_dir: Path,
                                                                 tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite")
    assert _cli("init", "--db", db, "--project", "f", "--labels", CLASSES) == 0
    assert _cli("import", "--db", db, "--project", "f", str(small_cifar), "--labels-from", "folders") == 0
    assert _cli("init", "--db", db, "--project", "m", "--labels", CLASSES) == 0
    assert _cli("import", "--db", db, "--project", "m", str(cifar_dir),
                "--labels-from", str(cifar_dir / "manifest.csv")) == 0
    service = Service(Settings(db=db))
    assert service.projects.status("f").labeled == 100
    manifest = {r["relative_path"]: r["label"] for r in csv.DictReader((cifar_dir / "manifest.csv").open())}
    out = tmp_path / "m.csv"
    service.exporting.export("m", fmt="csv", out=out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(manifest) == 1000
    for row in rows:
        rel = Path(row["path"]).relative_to(cifar_dir).as_posix()
        assert row["label"] == manifest[rel] and row["source"] == "import"
    with service.context.sessions.begin() as session:
        sources = set(session.scalars(select(Event.source).distinct()))
    assert sources == {"import"}
    service.close()


def test_embedding_resumes_after_interruption(small_cifar: Path, tmp_path: Path) -> None:
    from core.models.tiny import tiny_spec

    _cli("init", "--db", str(tmp_path / "r.sqlite"), "--project", "r", "--labels", "a,b")
    service = Service(Settings(db=str(tmp_path / "r.sqlite")))
    service.importing.images("r", [small_cifar], progress=False)
    spec = tiny_spec()
    done = []
    with pytest.raises(KeyboardInterrupt):
        service.embedding.embed("r", spec=spec, progress=False,
                      on_progress=lambda n, total: done.append(n) or (n >= 32 and _interrupt()))
    with service.context.sessions.begin() as session:
        kept = session.scalar(select(func.count()).select_from(Embedding))
    assert 0 < kept < 100
    summary = service.embedding.embed("r", spec=spec, progress=False)
    assert (summary.cached, summary.computed) == (kept, 100 - kept)
    service.close()


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_changed_prompts_make_a_new_prediction_run(small_cifar: Path, tmp_path: Path) -> None:
    from core.models.tiny import tiny_spec
    from core.store.schema import LabelClass

    db = str(tmp_path / "h.sqlite")
    _cli("init", "--db", db, "--project", "h", "--labels", "cat,dog")
    service = Service(Settings(db=db))
    service.importing.images("h", [small_cifar / "cat", small_cifar / "dog"], progress=False)
    service.embedding.embed("h", spec=tiny_spec(), progress=False)
    first = service.embedding.predict("h")
    assert service.embedding.predict("h").prompts_hash == first.prompts_hash
    with service.context.sessions.begin() as session:
        cat = session.scalar(select(LabelClass).where(LabelClass.name == "cat"))
        cat.prompts = ["a photo of a small cat."]
    second = service.embedding.predict("h")
    assert second.prompts_hash != first.prompts_hash and second.run_id != first.run_id
    with service.context.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(PredictionRun)) == 3
    service.close()


def test_unknown_project_names_the_existing_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "u.sqlite")
    _cli("init", "--db", db, "--project", "alpha", "--labels", "a")
    assert _cli("status", "--db", db, "--project", "beta") == 2
    assert "no project named 'beta' (projects: alpha)" in capsys.readouterr().err
