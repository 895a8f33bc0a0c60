"""Issue 12's import defects, one test (or more) each: 2 linear zips and caps, 3 non-UTF-8 names,
8 bounded memory, 9 inflated images, 10 nothing skipped silently, 11 label CSV columns."""

from __future__ import annotations

import io
import os
import re
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from core.errors import ImageError, InvalidInput
from core.io.images import inspect_file, inspect_image
from core.io.label_files import check_label_csv, read_label_csv
from core.io.sniff import sniff_refusal
from core.io.sources import Candidate, iter_candidates
from tests.io.corpus import ALL_GOOD_BUILDERS, MODERN_BUILDERS, encode, gradient, noisy_jpeg
from tests.io.helpers import run

MB = 2**20


def _png(width: int = 8, height: int = 6) -> bytes:
    return encode(Image.fromarray(gradient(width, height)), "PNG")


def _zip(path: Path, count: int, *, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(count):
            archive.writestr(f"d{index % 10}/{index:05d}.png", payload)
    return path


def _read_first(archive: Path, count: int) -> float:
    candidates = [c for c in iter_candidates([archive]) if isinstance(c, Candidate)][:count]
    start = time.perf_counter()
    for candidate in candidates:
        candidate.read_bytes()
    return (time.perf_counter() - start) / count


# --- defect 2: one pass over the archive, capped --------------------------------------------------


def test_entry_reads_cost_the_same_in_a_small_and_a_large_archive(tmp_path: Path) -> None:
    payload = _png()
    small = _read_first(_zip(tmp_path / "small.zip", 200, payload=payload), 200)
    large = _read_first(_zip(tmp_path / "large.zip", 8000, payload=payload), 200)
    assert large < 3 * small + 0.0005, (small, large)  # re-parsing 8,000 records per read was ~40x


def test_archive_caps_are_one_clear_error_per_archive(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", 30, payload=_png())
    (error,) = iter_candidates([archive], max_archive_entries=20)
    assert error.source == str(archive) and "30 entries, over the cap of 20; not opened" in error.reason
    (error,) = iter_candidates([archive], max_archive_bytes=100)
    assert "bytes uncompressed, over the cap of 100; not opened" in error.reason
    assert len(list(iter_candidates([archive], max_archive_entries=30))) == 30


# --- defect 3: non-UTF-8 names ---------------------------------------------------------------------


def test_non_utf8_file_names_import_with_replacement_characters(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for raw in (b"caf\xe9.png", b"ok.png", b"\xff\xfe/inner.png"):
        target = os.path.join(os.fsencode(root), raw)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(_png(5 + len(raw), 4))
    outcome = run([root], media_dir=tmp_path / "media")
    assert outcome.failed == {}
    assert sorted(outcome.admitted) == sorted(
        [str(root / "caf\ufffd.png"), str(root / "ok.png"), str(root / "\ufffd\ufffd" / "inner.png")]
    )
    for source, admitted in outcome.admitted.items():
        source.encode("utf-8")  # storable and printable
        str(admitted.file_path).encode("utf-8")
        assert admitted.file_path.is_file()
    assert str(outcome.admitted[str(root / "caf\ufffd.png")].file_path).startswith(str(tmp_path / "media"))


def test_zip_entry_flagged_utf8_but_not_is_one_entry_not_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("caf\u00e9.png", _png())  # flagged UTF-8 (0x800) because not ASCII
        opened.writestr("plain.png", _png(9, 9))
    archive.write_bytes(archive.read_bytes().replace("caf\u00e9".encode(), b"caf\xe9\xe9"))
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(archive)  # what the import used: the whole archive was refused
    outcome = run([archive], media_dir=tmp_path / "media")
    assert sorted(outcome.admitted) == [f"{archive}!caf\ufffd\ufffd.png", f"{archive}!plain.png"]


# --- defect 8: entries sniffed before they are read; kept ones streamed to disk --------------------


def _write_zeros(archive: zipfile.ZipFile, name: str, size: int, *, prefix: bytes = b"") -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as handle:
        handle.write(prefix)
        for _ in range((size - len(prefix)) // MB):
            handle.write(bytes(MB))


@pytest.mark.slow
def test_memory_stays_bounded_for_entries_of_zeros_and_a_huge_kept_entry(tmp_path: Path) -> None:
    archive = tmp_path / "zeros.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        for index in range(3):
            _write_zeros(opened, f"zeros{index}.jpg", 200 * MB)
        _write_zeros(opened, "padded.png", 150 * MB + len(_png()), prefix=_png())  # PNG, then 150 MB after IEND
    assert archive.stat().st_size < 2 * MB
    tracemalloc.start()
    try:
        outcome = run([archive], media_dir=tmp_path / "media")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * MB, f"peak {peak / MB:.0f} MB"
    assert all(reason == "not an image (unrecognised format)" for reason in outcome.failed.values())
    assert len(outcome.failed) == 3 and list(outcome.admitted) == [f"{archive}!padded.png"]
    assert outcome.admitted[f"{archive}!padded.png"].file_path.stat().st_size > 150 * MB


def test_pixel_bomb_entry_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    from tests.io.corpus import bomb_png

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("bomb.png", bomb_png(9_000))
    (candidate,) = iter_candidates([archive])
    assert isinstance(candidate, Candidate)
    chunks = candidate.iter_chunks()
    with pytest.raises(ImageError, match="9000x9000 = 81,000,000 pixels exceeds the cap"):
        candidate.read_bytes(max_pixels=50_000_000)
    chunks.close()
    assert not (tmp_path / "media").exists() or not list((tmp_path / "media").rglob("*.png"))


# --- defect 9: inflated and early-ending images ----------------------------------------------------


def _inflated_jpeg(side: int = 9000) -> bytes:
    """A real 64x64 JPEG whose frame header claims side x side: the attack in issue 12."""
    data = bytearray(encode(Image.fromarray(gradient(64, 64)), "JPEG", quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def test_inflated_jpeg_is_refused_before_decoding() -> None:
    data = _inflated_jpeg()
    assert len(data) < 20_000 and Image.open(io.BytesIO(data)).size == (9000, 9000)
    with pytest.raises(ImageError, match=r"implausibly small file: image data ends early: .* 9000x9000 pixels"):
        inspect_image(data, source="inflated.jpg")


def test_png_whose_pixel_data_stops_early_is_refused() -> None:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + os.urandom(300 * 3) for _ in range(40))  # 40 of 300 rows

    def png(side: int) -> bytes:
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")

    Image.open(io.BytesIO(png(300))).load()  # Pillow alone accepts it, black below row 40
    with pytest.raises(ImageError, match="truncated or corrupt image data: pixel data ends early"):
        inspect_image(png(300), source="short.png")
    with pytest.raises(ImageError, match="implausibly small file"):
        inspect_image(png(9000), source="x.png")


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {"optimize": True}), ("JPEG", {"optimize": True, "progressive": True}), ("JPEG", {"quality": 10}),
     ("WEBP", {"lossless": True}), ("GIF", {}), ("TIFF", {"compression": "tiff_deflate"})],
)  # fmt: skip
def test_real_flat_images_pass_however_small(tmp_path: Path, fmt: str, params: dict[str, object]) -> None:
    data = encode(Image.new("RGB", (4000, 3000), (128, 128, 128)), fmt, **params)
    assert inspect_image(data, source=f"flat.{fmt}").width == 4000
    path = tmp_path / "flat"
    path.write_bytes(data)
    assert inspect_file(path, source="flat", sha256="x").height == 3000


def test_truncated_files_of_every_format_are_refused() -> None:
    for name, build in ALL_GOOD_BUILDERS.items():
        data = build()
        if name != "animated.gif":  # its first frame lies in the first half
            with pytest.raises(ImageError):
                inspect_image(data[: len(data) // 2], source=name)
    half = noisy_jpeg()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        inspect_image(half[: len(half) // 2], source="half.jpg")


def test_truncated_image_detection_stays_on() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    core = Path(__file__).resolve().parents[2] / "core"
    assert not [p for p in core.rglob("*.py") if re.search(r"LOAD_TRUNCATED_IMAGES\s*=", p.read_text())]


# --- defect 10: every walked file accounted for, with a reason that says what to do --------------


def test_every_kind_of_file_in_a_folder_is_imported_or_has_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    files = {
        "photo.heic": MODERN_BUILDERS["photo.heic"](), "photo.avif": MODERN_BUILDERS["photo.avif"](),
        "logo.svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        "icon.ico": encode(Image.new("RGB", (16, 16)), "ICO"),
        "inner.zip": _zip(tmp_path / "i.zip", 1, payload=b"x").read_bytes(),
        "zipped.jpg": (tmp_path / "i.zip").read_bytes(), "doc.pdf": b"%PDF-1.4\n", "notes.txt": b"hello",
        ".DS_Store": b"\0\0\0\1Bud1", "._photo.heic": b"\0\5\26\7",
    }  # fmt: skip
    for name, data in files.items():
        (root / name).write_bytes(data)
    outcome = run([root], media_dir=tmp_path / "media")
    assert outcome.total == len(files)
    assert {Path(s).name for s in outcome.admitted} == {"photo.heic", "photo.avif"}
    reasons = {Path(source).name: reason for source, reason in outcome.failed.items()}
    assert reasons["logo.svg"] == "unsupported format 'SVG' (vector image); convert to JPEG/PNG"
    assert reasons["icon.ico"].startswith("unsupported format 'ICO'") and "convert to JPEG/PNG" in reasons["icon.ico"]
    assert reasons["inner.zip"].startswith("nested archive: not opened")
    assert reasons["zipped.jpg"] == "nested archive (zip): not opened"
    assert reasons["doc.pdf"].startswith("unsupported format 'PDF'")
    assert reasons["notes.txt"] == "not an image (unrecognised format)"
    assert reasons[".DS_Store"].startswith("hidden file") and reasons["._photo.heic"].startswith("macOS metadata")


def test_heic_without_its_plugin_says_how_to_fix_it() -> None:
    head = MODERN_BUILDERS["photo.heic"]()[:4096]
    reason = sniff_refusal(head, heif_available=False)
    assert reason is not None and reason.startswith("unsupported format 'HEIC'")
    assert "pip install pillow-heif" in reason and reason.endswith("convert to JPEG/PNG")


# --- defect 11: a labels CSV without path/label columns ------------------------------------------


def test_label_csv_without_recognisable_columns_lists_what_it_found(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InvalidInput, match=r"labels.csv': no path and label columns found \(columns: 'a', 'b', 'c'\)"):
        read_label_csv(path)
    with pytest.raises(InvalidInput, match="columns: 'a', 'b', 'c'"):
        check_label_csv(path)
    path.write_text("")
    with pytest.raises(InvalidInput, match="has no rows"):
        read_label_csv(path)
    path.write_text("photos/1.jpg,cat\n")
    check_label_csv(path)
    assert read_label_csv(path) == ({"photos/1.jpg": "cat"}, [])


def test_label_problems_quote_a_short_sanitised_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    secret = "root:x:0:0:root:/root:/bin/bash" * 5
    path.write_text(f"path,label\n{secret},\n")
    (_, [problem]) = read_label_csv(path)
    assert problem.source.endswith("line 2") and secret not in problem.reason and len(problem.reason) < 80


def test_leftovers_of_an_interrupted_import_are_removed(tmp_path: Path) -> None:
    from core.io.intake import remove_leftovers

    media = tmp_path / "media"
    (media / "ab").mkdir(parents=True)
    (media / ".incoming-x.part").write_bytes(b"half")
    (media / "ab" / ".incoming-y.part").write_bytes(b"half")
    (media / "ab" / "ab12.png").write_bytes(_png())
    assert remove_leftovers(media) == 2
    assert [p.name for p in media.rglob("*") if p.is_file()] == ["ab12.png"]
