"""A corpus of malformed inputs imported next to good images: every good image lands, every bad one
has its error recorded, nothing crashes, and re-importing changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.service import Service
from core.store.repo import ClassSpec
from tests.io.corpus import build_archive, build_corpus


@pytest.fixture()
def service(tmp_path: Path) -> Service:
    svc = Service(Settings(db=str(tmp_path / "i.sqlite"), media_dir=tmp_path / "media"))
    svc.projects.create("p", classes=[ClassSpec("cats"), ClassSpec("dogs")])
    yield svc
    svc.close()


def test_malformed_corpus_next_to_good_images(service: Service, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    expected = build_corpus(corpus)
    absolute = str(tmp_path / "outside" / "abs.jpg")
    archive_expected = build_archive(tmp_path / "bundle.zip", absolute_name=absolute)
    missing = tmp_path / "does-not-exist"
    summary = service.importing.images("p", [corpus, tmp_path / "bundle.zip", missing], labels_from="folders",
                                    progress=False)
    good = [n for n, r in expected.items() if r is None]  # HEIC and AVIF too (pillow-heif, Pillow's AVIF)
    zip_good = [n for n, r in archive_expected.items() if r is None]
    assert summary.imported + summary.duplicates == len(good) + len(zip_good)
    reasons = {p.file: p.reason for p in summary.errors}
    assert summary.failed == len(summary.errors)
    for name, reason in expected.items():
        if reason is not None and Path(name).suffix.lower() in (".jpg", ".png", ".gif", ".webp"):
            assert reason in reasons[str(corpus / name)], name
    for name, reason in archive_expected.items():
        if reason is not None:
            assert any(reason in p.reason for p in summary.errors if p.file.endswith(name)), name
    assert any(str(missing) in src for src in reasons)
    assert not Path(absolute).exists() and not (tmp_path / "escape.jpg").exists()
    # zip entries labeled by their folder inside the archive; the rest has no class folder
    assert summary.labeled == 1
    assert ("bundle.zip!dogs/puppies/rex.png" in {p.file for p in summary.label_problems} or
            any("puppies" in p.reason for p in summary.label_problems))
    status = service.projects.status("p")
    assert status.images == summary.imported
    assert {f.file for f in status.failed} == set(reasons)
    again = service.importing.images("p", [corpus, tmp_path / "bundle.zip", missing], progress=False)
    assert again.imported == 0 and again.duplicates == summary.imported + summary.duplicates
    assert len(service.projects.status("p").failed) == len(status.failed)


def test_every_good_corpus_image_embeds(service: Service, tmp_path: Path) -> None:
    from core.models.tiny import tiny_spec

    corpus = tmp_path / "corpus"
    build_corpus(corpus)
    service.importing.images("p", [corpus], progress=False)
    summary = service.embedding.embed("p", spec=tiny_spec(), progress=False)
    assert summary.failed == [] and summary.computed == service.projects.status("p").images


def test_labels_csv_with_unknown_class_is_reported(service: Service, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    build_corpus(corpus)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nphoto.jpg,cats\nphoto.png,zebras\n,dogs\n")
    summary = service.importing.images("p", [corpus], labels_from=str(labels), progress=False)
    assert summary.labeled == 1
    problems = {p.file: p.reason for p in summary.label_problems}
    assert any("zebras" in why and "classes: cats, dogs" in why for why in problems.values())
    assert any("line 4" in src for src in problems)
