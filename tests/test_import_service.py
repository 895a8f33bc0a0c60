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


# -- issue 12, defect 1: import roots ---------------------------------------------------------------


def rooted(tmp_path: Path, *roots: Path) -> Service:
    svc = Service(Settings(db=str(tmp_path / "r.sqlite"), media_dir=tmp_path / "media", import_roots=roots))
    svc.projects.create("p", classes=[ClassSpec("cats"), ClassSpec("dogs")])
    svc.team.add_user("boss", role="admin", password="boss-secret-1")
    return svc


def test_web_callers_read_only_inside_the_import_roots(tmp_path: Path) -> None:
    from core.errors import PermissionDenied

    root, outside = tmp_path / "root", tmp_path / "outside"
    write_pngs(root / "cats", 2)
    write_pngs(outside, 1, seed=5)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "cats" / "linked.png").symlink_to(outside / "img00.png")
    svc = rooted(tmp_path, root)
    try:
        messages = []
        for path in (outside, tmp_path / "missing", root / "escape", "/etc"):
            with pytest.raises(PermissionDenied, match="^folder: ") as caught:
                svc.importing.images("p", [path], annotator="boss", progress=False)
            messages.append(str(caught.value))
        assert len(set(messages)) == 1  # a missing path answers like an existing one outside the roots
        with pytest.raises(PermissionDenied, match="^labels_from: "):
            svc.importing.images("p", [root], labels_from="/etc/passwd", annotator="boss", progress=False)
        summary = svc.importing.images("p", [root], labels_from="folders", annotator="boss", progress=False)
        assert summary.imported == 2 and summary.labeled == 2
        refused = {Path(p.file).relative_to(root).as_posix() for p in summary.errors if "import roots" in p.reason}
        assert refused == {"cats/linked.png", "escape/img00.png"} and summary.failed == 2  # links out of the root
        local = svc.importing.images("p", [outside], progress=False)  # the CLI, the trusted operator
        assert local.imported == 1
    finally:
        svc.close()


def test_without_roots_web_callers_may_only_upload(tmp_path: Path) -> None:
    from core.errors import PermissionDenied

    write_pngs(tmp_path / "photos", 1)
    svc = rooted(tmp_path)
    try:
        with pytest.raises(PermissionDenied, match="no import roots"):
            svc.jobs.start_import("p", [tmp_path / "photos"], annotator="boss")
        uploads = tmp_path / "gradio-uploads"
        write_pngs(uploads / "abc123", 1)
        with pytest.raises(PermissionDenied, match=r"files\[0\]: not a file uploaded"):
            svc.jobs.start_import("p", ["/etc/passwd"], annotator="boss", uploaded_to=uploads)
        with pytest.raises(PermissionDenied, match=r"files\[0\]"):
            svc.jobs.start_import("p", [uploads / "abc123" / ".." / ".." / "photos" / "img00.png"],
                                  annotator="boss", uploaded_to=uploads)
        job = svc.jobs.start_import("p", [uploads / "abc123" / "img00.png"], annotator="boss", uploaded_to=uploads,
                                    embed=False)
        done = svc.jobs.wait(job.job_id, timeout=60)
        assert done.status == "done" and done.result is not None
        assert done.result["import"].imported == 1  # type: ignore[attr-defined]
    finally:
        svc.close()


def test_label_file_problems_show_a_short_excerpt_by_line(service: Service, tmp_path: Path) -> None:
    write_pngs(tmp_path / "photos", 1)
    labels = tmp_path / "labels.csv"
    secret = "x" * 300
    labels.write_text(f"path,label\nimg00.png,cats\n{secret},\n")
    summary = service.importing.images("p", [tmp_path / "photos"], labels_from=str(labels), progress=False)
    (problem,) = summary.label_problems
    assert problem.file.endswith("line 3") and len(problem.reason) < 100 and secret not in problem.reason


# -- issue 12, defect 2: cancel, and more than one worker ------------------------------------------


def test_a_cancelled_import_stops_between_files_and_reports_what_it_did(service: Service, tmp_path: Path) -> None:
    write_pngs(tmp_path / "photos", 6)
    asked = iter(range(100))
    summary = service.importing.images("p", [tmp_path / "photos"], progress=False,
                                       cancelled=lambda: next(asked) >= 2)
    assert summary.cancelled and summary.imported == 2 and summary.failed == 0
    rest = service.importing.images("p", [tmp_path / "photos"], progress=False)
    assert (rest.imported, rest.duplicates, rest.cancelled) == (4, 2, False)


def test_jobs_run_beside_other_projects_but_one_at_a_time_per_project() -> None:
    import threading

    from core.usecases.jobs.runner import JobRunner

    runner = JobRunner(workers=2)
    release = threading.Event()
    running: list[str] = []

    def work(name: str):  # type: ignore[no-untyped-def]
        def run(progress):  # type: ignore[no-untyped-def]
            running.append(name)
            release.wait(10)
            return {"ran": name}
        return run

    first = runner.submit(kind="import", project="a", work=work("a1"))
    second = runner.submit(kind="import", project="a", work=work("a2"))
    other = runner.submit(kind="import", project="b", work=work("b1"))
    deadline = __import__("time").monotonic() + 10
    while len(running) < 2 and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.01)
    assert sorted(running) == ["a1", "b1"] and runner.get(second.job_id).status == "queued"
    cancelled = runner.cancel(second.job_id)
    assert cancelled.status == "cancelled" and cancelled.finished
    release.set()
    assert runner.wait(first.job_id, timeout=10).status == "done"
    assert runner.wait(other.job_id, timeout=10).result == {"ran": "b1"}
    assert "a2" not in running


def test_jobs_are_visible_to_their_owner_and_admins_only(tmp_path: Path) -> None:
    from core.errors import NotFound

    root = tmp_path / "root"
    write_pngs(root, 2)
    svc = rooted(tmp_path, root)
    try:
        svc.team.add_user("ann", role="annotator", password="ann-secret-12")
        svc.team.add_user("eve", role="admin", password="eve-secret-12")
        job = svc.jobs.start_import("p", [root], annotator="boss", embed=False)
        svc.jobs.wait(job.job_id, timeout=60, annotator="boss")
        assert [j.job_id for j in svc.jobs.list(annotator="boss")] == [job.job_id]
        assert [j.job_id for j in svc.jobs.list(annotator="eve")] == [job.job_id]  # another admin
        assert svc.jobs.list(annotator="ann") == []
        for call in (svc.jobs.get, svc.jobs.cancel, svc.jobs.wait):
            with pytest.raises(NotFound, match="job_id: no such job"):
                call(job.job_id, annotator="ann")
    finally:
        svc.close()


# -- issue 12, defects 11 and 14: class lists ------------------------------------------------------


def test_class_lists_are_validated(tmp_path: Path) -> None:
    from core.errors import Conflict, InvalidInput
    from core.usecases.projects.classes import load_labels_file, parse_label_list

    assert [c.name for c in parse_label_list(" cat , dog,,bird ")] == ["cat", "dog", "bird"]
    with pytest.raises(Conflict, match="--labels"):
        parse_label_list("Cat,cat")
    with pytest.raises(InvalidInput, match="control character"):
        parse_label_list("c\0at,dog")
    listed = tmp_path / "classes.json"
    listed.write_text('["cat", "dog"]')
    assert [c.name for c in load_labels_file(listed)] == ["cat", "dog"]
    listed.write_text("42")
    with pytest.raises(InvalidInput, match="classes.json"):
        load_labels_file(listed)


# -- issue 12, defect 12: the export download ------------------------------------------------------


def test_export_download_is_one_zip_and_leftovers_are_removed(service: Service, tmp_path: Path) -> None:
    import zipfile

    write_pngs(tmp_path / "photos" / "cats", 2)
    service.importing.images("p", [tmp_path / "photos"], labels_from="folders", progress=False)
    report = service.exporting.download("p", fmt="imagefolder")
    assert report.download is not None and report.download.endswith(".zip")
    assert Path(report.download).parent == service.exporting.folder
    with zipfile.ZipFile(report.download) as archive:
        assert sum(name.startswith("cats/") for name in archive.namelist()) >= 2
    assert not Path(report.out).exists()  # the folder was zipped, then removed
    leftover = service.exporting.folder / "p-imagefolder-1.zip.partial"
    leftover.write_bytes(b"half")
    assert service.exporting.clean_interrupted() == 1 and not leftover.exists()
    assert Path(report.download).exists()


def write_pngs(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    from tests.webapp.conftest import write_images

    return write_images(folder, count, seed=seed)
