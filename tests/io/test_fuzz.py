"""Property-based fuzzing of the import boundary (core.io): random bytes, mutated real image headers,
hostile zip structures and random label CSVs. Properties, for every input:

* no exception escapes but our named ones (ImageError per file, InvalidInput for a label file);
* every walked file is accounted for: admitted, or refused with a non-empty reason;
* nothing is written outside the media folder;
* memory stays bounded (tracemalloc peak), whatever sizes the archive declares.

`make fuzz` runs the same tests with HYPOTHESIS_PROFILE=fuzz (thousands of examples).
"""

from __future__ import annotations

import functools
import io
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from core.errors import InvalidInput
from core.io.label_files import read_label_csv
from tests.io.corpus import encode, gradient
from tests.io.helpers import run

MB = 2**20
FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP")


@functools.cache
def _real(fmt: str) -> bytes:
    return encode(Image.fromarray(gradient(24, 16)), fmt)


def _files_outside(root: Path, media: Path) -> set[Path]:
    return {p for p in root.rglob("*") if media not in p.parents and p != media}


def _check_run(root: Path, inputs: list[Path], *, expected: int | None = None) -> None:
    media = root / "media"
    before = _files_outside(root, media)
    tracemalloc.start()
    try:
        outcome = run(inputs, media_dir=media)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * MB, f"peak {peak / MB:.0f} MB"
    assert _files_outside(root, media) == before, "something was written outside the media folder"
    assert all(reason.strip() for reason in outcome.failed.values())
    for admitted in outcome.admitted.values():
        assert admitted.file_path.is_file() and admitted.info.width > 0
        text = str(admitted.file_path)
        assert media in admitted.file_path.parents or admitted.file_path.parent.is_relative_to(root / "in"), text
    if expected is not None:
        assert outcome.total == expected, (outcome.total, expected)
    for source in [*outcome.admitted, *outcome.failed]:
        source.encode("utf-8")  # every name is storable text


mutation = st.tuples(
    st.integers(0, 300), st.sampled_from(["flip", "cut", "insert", "zero"]), st.binary(min_size=1, max_size=8)
)


def _mutate(data: bytes, changes: list[tuple[int, str, bytes]]) -> bytes:
    out = bytearray(data)
    for at, kind, blob in changes:
        at = min(at, len(out))
        if kind == "flip" and at < len(out):
            out[at] ^= blob[0] or 1
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = blob
        elif at < len(out):
            out[at : at + len(blob)] = bytes(len(blob))[: len(out) - at]
    return bytes(out)


@given(st.binary(max_size=4096), st.sampled_from([".jpg", ".png", ".heic", ".zip", ".txt", ""]))
def test_random_bytes_are_accounted_for(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / f"f{suffix}").write_bytes(data)
        _check_run(root, [root / "in"], expected=1)
        _check_run(root, [root / "in" / f"f{suffix}"], expected=None)


@given(st.sampled_from(FORMATS), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_real_images_are_accounted_for(fmt: str, changes: list[tuple[int, str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / f"x.{fmt.lower()}").write_bytes(_mutate(_real(fmt), changes))
        _check_run(root, [root / "in"], expected=1)


_NAMES = st.one_of(
    st.sampled_from(["a.png", "../up.png", "/abs.png", "C:\\win.png", "d/../../x.png", "d/ok.jpg", ".hidden.png",
                     "__MACOSX/._a.png", "inner.zip", "n\x00ul.png", "dup.png", "dup.png", "dir/", "", "."]),
    st.text(min_size=1, max_size=12),
)  # fmt: skip
_CONTENT = st.one_of(st.sampled_from(FORMATS).map(_real), st.binary(max_size=512), st.just(b"PK\x03\x04"))
_PATCH = st.tuples(st.sampled_from(["flags", "size", "csize", "offset", "byte"]), st.integers(0, 2**32 - 1))


def _patch_central(data: bytearray, kind: str, value: int) -> None:
    at = data.find(b"PK\x01\x02")
    if at < 0:
        return
    if kind == "flags":
        data[at + 8 : at + 10] = struct.pack("<H", value & 0xFFFF)
    elif kind == "size":
        data[at + 24 : at + 28] = struct.pack("<I", value)
    elif kind == "csize":
        data[at + 20 : at + 24] = struct.pack("<I", value)
    elif kind == "offset":
        data[at + 42 : at + 46] = struct.pack("<I", value)
    else:
        data[value % len(data)] ^= 0xFF


@given(
    st.lists(st.tuples(_NAMES, _CONTENT, st.booleans()), max_size=6),
    st.lists(_PATCH, max_size=3),
)
def test_hostile_zip_structures_are_accounted_for(entries: list[tuple[str, bytes, bool]], patches: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content, deflate in entries:
                info = zipfile.ZipInfo(name or "_")
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                archive.writestr(info, content)
        data = bytearray(buffer.getvalue())
        for kind, value in patches:
            _patch_central(data, kind, value)
        (root / "in" / "a.zip").write_bytes(bytes(data))
        _check_run(root, [root / "in" / "a.zip"])


@given(st.text(max_size=400), st.sampled_from(["utf-8", "latin-1"]))
def test_random_label_csvs_read_or_raise_invalid_input(text: str, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.csv"
        path.write_bytes(text.encode(encoding, "replace"))
        try:
            labels, problems = read_label_csv(path)
        except InvalidInput as exc:
            assert "labels.csv" in str(exc)
            return
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in labels.items())
        for problem in problems:
            assert "line" in problem.source and len(problem.reason) < 200
