"""Candidate discovery from folders, files and zip archives; label CSVs (core.io.sources)."""

from __future__ import annotations

import csv
import os
import re
import struct
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from core.errors import ImageError, InvalidInput
from core.io.images import inspect_image
from core.io.sources import (
    Candidate,
    LabelMatcher,
    SourceError,
    iter_candidates,
    match_label,
    read_label_csv,
)
from tests.io.corpus import build_archive, build_corpus, encode, gradient


def _png(width: int = 8, height: int = 6) -> bytes:
    return encode(Image.fromarray(gradient(width, height)), "PNG")


def _tree(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_png())
    return root


def _split(items: list[Candidate | SourceError]) -> tuple[list[Candidate], list[SourceError]]:
    good = [item for item in items if isinstance(item, Candidate)]
    return good, [item for item in items if isinstance(item, SourceError)]


def test_folder_walk_is_sorted_and_accounts_for_every_file(tmp_path: Path) -> None:
    names = ["b.jpg", "a.PNG", "dog/puppy/x.gif", "cat/2.jpg", "cat/1.jpeg", ".hidden/y.jpg"]
    root = _tree(tmp_path / "data", [*names, ".z.jpg", "notes.txt", "cat/manifest.csv", "inner.zip"])
    items, errors = _split(list(iter_candidates([root])))
    assert [(e.source, e.reason.split(" (")[0]) for e in errors] == [
        (str(root / ".hidden"), "hidden folder"),
        (str(root / ".z.jpg"), "hidden file"),
        (str(root / "inner.zip"), "nested archive: not opened"),
    ]
    expected = ["a.PNG", "b.jpg", "notes.txt", "cat/1.jpeg", "cat/2.jpg", "cat/manifest.csv", "dog/puppy/x.gif"]
    assert [item.rel_path for item in items] == expected
    assert [item.label_hint for item in items] == [None, None, None, "cat", "cat", "cat", "puppy"]
    assert items[3].path == (root / "cat" / "1.jpeg").absolute()
    assert items[3].source == str(root / "cat" / "1.jpeg")
    assert items[3].read_bytes() == _png()
    assert _split(list(iter_candidates([root])))[0] == items  # deterministic


def test_folder_with_every_corpus_file_continues_past_every_error(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    expected = build_corpus(root / "sub")
    (root / "broken.jpg").symlink_to(root / "nowhere.jpg")
    os.mkfifo(root / "pipe.jpg")  # reading it would block: must be refused, not opened
    good, errors = _split(list(iter_candidates([root, tmp_path / "gone", root / "sub"])))
    assert [(e.source, e.reason) for e in errors] == [
        (str(root / "broken.jpg"), "broken symbolic link"),
        (str(root / "pipe.jpg"), "not a regular file"),
        (str(tmp_path / "gone"), "no such file or directory"),
    ]
    assert [c.rel_path for c in good] == sorted(f"sub/{n}" for n in expected) + sorted(expected)
    for candidate in good:
        reason = expected[Path(candidate.rel_path).name]
        if reason is None:
            assert inspect_image(candidate.read_bytes(), source=candidate.source).width > 0
        else:
            with pytest.raises(ImageError, match=re.escape(reason)) as raised:
                inspect_image(candidate.read_bytes(), source=candidate.source)
            assert Path(candidate.rel_path).name in str(raised.value)


def test_symlinked_folders_are_followed_once_without_looping(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root", ["cat/1.jpg"])
    outside = _tree(tmp_path / "outside", ["o.png"])
    (root / "cat" / "loop").symlink_to(root, target_is_directory=True)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    good, errors = _split(list(iter_candidates([root])))
    assert [(c.rel_path, c.label_hint) for c in good] == [
        ("cat/1.jpg", "cat"),
        ("linked/o.png", "linked"),
    ]
    assert [e.source for e in errors] == [str(root / "cat" / "loop")]
    assert "already visited" in errors[0].reason


def test_explicit_files_any_extension_and_missing_paths(tmp_path: Path) -> None:
    odd = tmp_path / "scan.dat"
    odd.write_bytes(_png())
    missing = tmp_path / "missing.jpg"
    items = list(iter_candidates([missing, str(odd)]))
    assert items[0] == SourceError(str(missing), "no such file or directory")
    assert items[1] == Candidate(source=str(odd), path=odd, rel_path="scan.dat", label_hint=None)
    assert items[1].read_bytes() == _png()


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading without O_NONBLOCK would wait for a writer forever
    assert list(iter_candidates([fifo])) == [SourceError(str(fifo), "not a regular file")]
    forged = Candidate(source=str(fifo), path=fifo, rel_path="pipe.png", label_hint=None)
    with pytest.raises(ImageError, match="pipe.png: not a regular file"):
        forged.read_bytes()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_paths_are_reported(tmp_path: Path) -> None:
    locked_dir = _tree(tmp_path / "locked", ["a.jpg"])
    locked_file = _tree(tmp_path, ["secret.jpg"]) / "secret.jpg"
    locked_dir.chmod(0)
    locked_file.chmod(0)
    try:
        items = list(iter_candidates([locked_dir, locked_file]))
    finally:
        locked_dir.chmod(0o755)
    assert items == [
        SourceError(str(locked_dir), "permission denied"),
        SourceError(str(locked_file), "permission denied"),
    ]


def test_plain_file_read_is_size_capped(tmp_path: Path) -> None:
    path = _tree(tmp_path, ["big.png"]) / "big.png"
    (candidate,) = _split(list(iter_candidates([path], max_entry_bytes=10)))[0]
    with pytest.raises(ImageError, match="big.png: file too large"):
        candidate.read_bytes()
    path.unlink()
    with pytest.raises(ImageError, match="big.png: no such file or directory"):
        candidate.read_bytes()


def test_zip_entries_become_candidates_and_escapes_are_refused(tmp_path: Path) -> None:
    absolute = f"/tmp/clipmark-evil-{uuid.uuid4().hex}.jpg"
    archive = tmp_path / "work" / "photos.zip"
    archive.parent.mkdir()
    expected = build_archive(archive, absolute_name=absolute)
    good, errors = _split(list(iter_candidates([archive])))
    assert [(c.source, c.rel_path, c.label_hint, c.path) for c in good] == [
        (f"{archive}!cats/tabby.png", "cats/tabby.png", "cats", None),
        (f"{archive}!dogs/puppies/rex.png", "dogs/puppies/rex.png", "puppies", None),
        (f"{archive}!root.png", "root.png", None, None),
        (f"{archive}!README.txt", "README.txt", None, None),  # read, then refused: not an image
    ]
    bad = {name: reason for name, reason in expected.items() if reason is not None}
    bad["__MACOSX/cats/._tabby.png"] = "macOS metadata"
    assert [e.source for e in errors] == [f"{archive}!{name}" for name in bad]
    for error, reason in zip(errors, bad.values(), strict=True):
        assert reason in error.reason and error.reason.endswith("skipped")
    for candidate in good[:3]:
        assert inspect_image(candidate.read_bytes(), source=candidate.source).width == 16
    with pytest.raises(ImageError, match="README.txt: not an image"):
        good[3].read_bytes()
    assert not Path(absolute).exists()
    assert not list(tmp_path.rglob("escape*")) and not (Path.cwd() / "escape.jpg").exists()


def test_zip_reads_are_thread_safe(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for index in range(40):
            opened.writestr(f"c{index % 4}/{index:02d}.png", _png(4 + index, 5))
    good, _ = _split(list(iter_candidates([archive])))
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(lambda c: inspect_image(c.read_bytes(), source=c.source).width, good))
    assert sizes == [4 + int(Path(c.rel_path).stem) for c in good]


def test_corrupt_zip_is_a_source_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    (error,) = iter_candidates([bad])
    assert isinstance(error, SourceError) and error.source == str(bad)
    assert error.reason.startswith("not a readable zip archive")


def test_zip_entry_declaring_too_many_bytes_is_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("zeros.png", b"\0" * 2_000_000)  # ~2 KB compressed
        opened.writestr("ok.png", _png())
    items = list(iter_candidates([archive], max_entry_bytes=1_000_000))
    assert isinstance(items[0], SourceError) and "zip bomb protection" in items[0].reason
    assert "2,000,000 bytes" in items[0].reason
    assert isinstance(items[1], Candidate) and items[1].read_bytes() == _png()


def _lie_about_size(archive: Path, *, declared: int) -> None:
    """Patch the central directory so the (only) entry claims `declared` uncompressed bytes."""
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", declared)
    archive.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_lying_zip_header_cannot_exceed_the_cap(tmp_path: Path, compression: int) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", compression=compression) as opened:
        opened.writestr("a.png", b"\x89PNG" + b"\0" * 50_000)
    _lie_about_size(archive, declared=100)
    (candidate,) = iter_candidates([archive], max_entry_bytes=1_000)
    assert isinstance(candidate, Candidate)
    with pytest.raises(ImageError, match="liar.zip!a.png: corrupt or unreadable archive entry"):
        candidate.read_bytes()


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize("header", [[], [["path", "label"]], [["relative_path", "Label"]]])
def test_label_csv_with_or_without_header(tmp_path: Path, header: list[list[str]]) -> None:
    rows = [["cat/1.jpg", "cat"], [".\\dog\\2.jpg", " dog "], [], ["3.jpg", "bird", "extra"]]
    labels, errors = read_label_csv(_write_csv(tmp_path / "labels.csv", header + rows))
    assert labels == {"cat/1.jpg": "cat", "dog/2.jpg": "dog", "3.jpg": "bird"}
    assert errors == []


def test_label_csv_reads_the_shared_manifest_format(tmp_path: Path) -> None:
    rows = [["relative_path", "label", "source_path", "sha256"], ["a/x.jpg", "a", "t/x.jpg", "ff"]]
    labels, errors = read_label_csv(_write_csv(tmp_path / "manifest.csv", rows))
    assert (labels, errors) == ({"a/x.jpg": "a"}, [])
    reordered = [["sha256", "label", "path"], ["ff", "b", "b/y.jpg"]]
    assert read_label_csv(_write_csv(tmp_path / "r.csv", reordered))[0] == {"b/y.jpg": "b"}


def test_label_csv_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    rows = [["path", "label"], ["a.jpg", "cat"], ["b.jpg"], ["", "dog"], ["c.jpg", " "],
            ["a.jpg", "dog"], ["a.jpg", "cat"], ["d.jpg", "dog"]]  # fmt: skip
    path = _write_csv(tmp_path / "labels.csv", rows)
    labels, errors = read_label_csv(path)
    assert labels == {"a.jpg": "cat", "d.jpg": "dog"}
    assert [e.source for e in errors] == [f"{path} line {n}" for n in (3, 4, 5, 6)]
    assert "missing label" in errors[0].reason and errors[1].reason == "empty path"
    assert "conflicting label 'dog'" in errors[3].reason and "line 2" in errors[3].reason


def test_label_csv_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="nope.csv"):
        read_label_csv(tmp_path / "nope.csv")
    (tmp_path / "latin.csv").write_bytes(b"caf\xe9.jpg,cat\n")
    with pytest.raises(InvalidInput, match="latin.csv"):
        read_label_csv(tmp_path / "latin.csv")


def test_match_label_order_and_ambiguity(tmp_path: Path) -> None:
    plain = Candidate(source="in/cat/1.jpg", path=tmp_path / "in/cat/1.jpg", rel_path="cat/1.jpg",
                      label_hint="cat")  # fmt: skip
    zipped = Candidate(source="p.zip!x/2.jpg", path=None, rel_path="x/2.jpg", label_hint="x")
    by_abs = {(tmp_path / "in/cat/1.jpg").as_posix(): "tiger", "p.zip!x/2.jpg": "lion"}
    assert match_label({"cat/1.jpg": "cat", **by_abs}, plain) == "cat"
    assert match_label(by_abs, plain) == "tiger"
    assert match_label(by_abs, zipped) == "lion"
    assert match_label({"old/place/1.jpg": "cat", "other/2.jpg": "dog"}, plain) == "cat"
    assert match_label({"a/1.jpg": "cat", "b/1.jpg": "dog"}, plain) is None  # ambiguous
    assert match_label({"a/1.jpg": "cat", "b/1.jpg": "cat"}, plain) == "cat"
    assert LabelMatcher({"nothing.jpg": "x"}).match(zipped) is None


def test_cifar_folder_matches_its_manifest(cifar_dir: Path) -> None:
    labels, errors = read_label_csv(cifar_dir / "manifest.csv")
    assert errors == [] and len(labels) == 1000
    with (cifar_dir / "manifest.csv").open(newline="") as handle:
        digests = {row["relative_path"]: row["sha256"] for row in csv.DictReader(handle)}
    items = [item for item in iter_candidates([cifar_dir]) if not item.source.endswith(".csv")]
    assert len(items) == 1000 and all(isinstance(item, Candidate) for item in items)
    matcher = LabelMatcher(labels)
    for candidate in items:
        assert isinstance(candidate, Candidate)
        assert candidate.label_hint == labels[candidate.rel_path] == matcher.match(candidate)
        info = inspect_image(candidate.read_bytes(), source=candidate.source)
        assert (info.width, info.height, info.sha256) == (32, 32, digests[candidate.rel_path])
