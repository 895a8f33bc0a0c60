"""A folder export offered as one download: zipped under a temporary name and renamed when complete,
so a `.zip` under its final name is never half written; and the clean-up, at start, of what an
interrupted export left behind (a `*.zip.partial`, a staging or swapped-out folder of atomic.py)."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

from core.errors import InvalidInput
from core.export.atomic import REPLACED_SUFFIX, STAGING_SUFFIX, fsync_file

PARTIAL_SUFFIX = ".partial"
ALREADY_COMPRESSED = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".heic", ".parquet", ".zip"})


def zip_folder_atomically(folder: str | Path) -> Path:
    """`<folder>.zip` beside the folder, its entries relative to the folder (as
    `shutil.make_archive(folder, "zip", root_dir=folder)` makes), written as `<folder>.zip.partial`,
    fsynced and moved into place with `os.replace`. Any failure removes the partial file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder; nothing to zip")
    final = folder.with_name(folder.name + ".zip")
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    try:
        _write_zip(folder, partial)
        fsync_file(partial)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_folder(folder.parent)
    return final


def _write_zip(folder: Path, dest: Path) -> None:
    """Folders as entries too (an empty class folder survives); file links are followed, as
    make_archive does; images and Parquet, already compressed, are stored, not deflated again."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False) as archive:
        for directory, subdirs, files in os.walk(folder):
            subdirs.sort()
            here = Path(directory)
            if here != folder:
                archive.write(here, here.relative_to(folder).as_posix())
            for name in sorted(files):
                path = here / name
                stored = path.suffix.lower() in ALREADY_COMPRESSED
                archive.write(path, path.relative_to(folder).as_posix(),
                              compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def is_interrupted(entry: Path) -> bool:
    """A `*.partial` file, or a hidden staging/swapped-out folder of an export that never finished."""
    if entry.name.endswith(PARTIAL_SUFFIX):
        return entry.is_file() or entry.is_symlink()
    hidden_folder = entry.name.startswith(".") and entry.is_dir() and not entry.is_symlink()
    return hidden_folder and entry.name.endswith((STAGING_SUFFIX, REPLACED_SUFFIX))


def remove_interrupted(exports_dir: str | Path, *, older_than: float = 0.0) -> int:
    """Delete the leftovers of interrupted exports directly inside `exports_dir` (see is_interrupted)
    last modified more than `older_than` seconds ago; returns how many were removed. Call it at
    start, before any export runs (a server sharing the folder with others passes e.g. 3600)."""
    exports_dir = Path(exports_dir)
    if not exports_dir.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for entry in sorted(exports_dir.iterdir()):
        if not is_interrupted(entry) or entry.lstat().st_mtime > cutoff:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed
