"""Where an export is written: a temporary sibling of the target, moved into place when complete.

A crash (or an exception, or Ctrl-C) leaves the target as it was; `manifest.json`, with counts and
a sha256 per file, is written last, so a folder with a manifest is a finished export."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from core.errors import Conflict, ImageError, InvalidInput
from core.export.names import alternative_name

MANIFEST = "manifest.json"
GENERATOR = "clipmark"
CHUNK = 1 << 20
STAGING_SUFFIX = ".clipmark-tmp"   # a folder being written: `.<out name>.<random>.clipmark-tmp`
REPLACED_SUFFIX = ".clipmark-old"  # a previous export being swapped out: `.<out name>.<random>.clipmark-old`


def is_clipmark_export(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_destination(out: Path, *, overwrite: bool, single_file: bool) -> None:
    """Refuse to clobber: an existing file needs --overwrite; a non-empty folder needs --overwrite
    and must be a previous clipmark export (never someone's home folder)."""
    if not out.exists() and not out.is_symlink():
        return
    if single_file:
        if out.is_dir():
            raise InvalidInput(f"--out: '{out}' is a folder; this export writes one file, give a file path")
        if not overwrite:
            raise Conflict(f"--out: '{out}' exists; pass --overwrite to replace it")
        return
    if not out.is_dir() or out.is_symlink():
        raise InvalidInput(f"--out: '{out}' exists and is not a folder; give a folder path")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise Conflict(f"--out: '{out}' is not empty; pass --overwrite to replace a previous export")
    if not is_clipmark_export(out):
        raise Conflict(f"--out: '{out}' is not empty and holds no clipmark {MANIFEST}; refusing to "
                       "replace it, choose an empty or new folder")


class ExportTarget:
    """A staging folder. Writers ask it for paths (checked to stay inside), text files and image
    placements; it remembers every file for the manifest."""

    def __init__(self, out: Path, *, single_file: str | None) -> None:
        self.out = out
        self.single_file = single_file
        out.parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=STAGING_SUFFIX, dir=out.parent))
        self._texts: list[str] = []
        self._folders: set[tuple[str, ...]] = set()
        self._images: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.images_placed = 0
        self.changed_since_import = 0

    def path(self, rel: str) -> Path:
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
            raise InvalidInput(f"export path '{rel}' is not a plain relative path")
        path = self.root.joinpath(*parts)
        if parts[:-1] not in self._folders:  # checked once per folder: folders are few, files many
            if not path.parent.resolve().is_relative_to(self.root.resolve()):
                raise InvalidInput(f"export path '{rel}' escapes the export folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(parts[:-1])
        return path

    @contextmanager
    def open_text(self, rel: str) -> Iterator[IO[str]]:
        with self.path(rel).open("x", encoding="utf-8", newline="") as handle:
            yield handle
        self._texts.append(rel)

    def register(self, rels: list[str]) -> None:
        """Files a writer created through `path()`; hashed into the manifest at commit."""
        self._texts.extend(rels)

    def place_image(self, source: str, folder: str, name: str, *, link: str, image_id: int, sha256: str) -> str:
        """Copy or link `source` to folder/name (a unique variant if taken); returns the relative path."""
        if not os.path.isfile(source):
            raise ImageError(source, "image file is missing (moved or deleted since import); restore it "
                                     "or export csv/jsonl/coco without --link, which reference files")
        for attempt in range(0, 1000):
            candidate = name if attempt == 0 else alternative_name(name, image_id=image_id, attempt=attempt)
            rel = f"{folder}/{candidate}" if folder else candidate
            try:
                digest = self._put(source, self.path(rel), link=link, sha256=sha256)
            except FileExistsError:
                continue
            self._images.write(f"{rel}\t{digest}\n")
            self.images_placed += 1
            return rel
        raise Conflict(f"{source}: no free file name in '{folder}' after 1000 attempts")

    def _put(self, source: str, dest: Path, *, link: str, sha256: str) -> str:
        if link == "symlink":
            os.symlink(os.path.abspath(source), dest)
            return sha256
        if link == "hardlink":
            try:
                os.link(source, dest)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise InvalidInput(f"--link hardlink: cannot hard-link '{source}' into '{self.out.parent}' "
                                       f"({exc.strerror}); use --link copy or symlink") from exc
                raise
            return sha256
        digest = _copy_hashing(source, dest)
        self.changed_since_import += bool(sha256) and digest != sha256
        return digest

    def _file_hashes(self) -> Iterator[tuple[str, str]]:
        for rel in self._texts:
            yield rel, sha256_of(self.root / rel)
        self._images.seek(0)
        for line in self._images:
            rel, _, digest = line.rstrip("\n").partition("\t")
            yield rel, digest

    def commit(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (last), then move the finished export into place."""
        if self.single_file:
            fsync_file(self.root / self.single_file)
            os.replace(self.root / self.single_file, self.out)
            self.abort()
            return {}
        files = _write_manifest(self.root / MANIFEST, manifest, self._file_hashes())
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=REPLACED_SUFFIX, dir=self.out.parent))
            os.replace(self.out, old / "previous")
        os.replace(self.root, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._images.close()
        return {"files": files}

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._images.close()


def _copy_hashing(source: str, dest: Path) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as src, dest.open("xb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    shutil.copymode(source, dest)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a finished file to disk before it is renamed into place (a rename can outlive a crash
    that the data did not)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(path: Path, manifest: dict[str, Any], files: Iterator[tuple[str, str]]) -> int:
    """Streamed JSON: the summary keys, then "files": {relative path: sha256}; fsynced."""
    count = 0
    with path.open("x", encoding="utf-8") as handle:
        handle.write("{\n")
        for key, value in {"generator": GENERATOR, **manifest}.items():
            handle.write(f"  {json.dumps(key)}: {json.dumps(value, default=str, ensure_ascii=False)},\n")
        handle.write('  "files": {')
        for rel, digest in files:
            handle.write(("," if count else "") + f"\n    {json.dumps(rel, ensure_ascii=False)}: \"{digest}\"")
            count += 1
        handle.write("\n  }\n}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return count


@contextmanager
def staged(out: Path, *, overwrite: bool, single_file: str | None) -> Iterator[ExportTarget]:
    """An ExportTarget that is removed, leaving `out` untouched, unless committed."""
    check_destination(out, overwrite=overwrite, single_file=single_file is not None)
    target = ExportTarget(out, single_file=single_file)
    try:
        yield target
    except BaseException:
        target.abort()
        raise
    if target.root.exists():
        target.abort()
