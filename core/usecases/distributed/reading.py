"""Reading an image inside an actor: a local (or shared-storage) path as clipmark always does, or an
fsspec URL (`s3://`, `gs://`, `http(s)://`, ...; the protocol's package, e.g. s3fs, on every node)."""

from __future__ import annotations

import os
import tempfile

from PIL import Image

from core.errors import ImageError
from core.io.images import open_rgb


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def read_picture(path: str, *, max_pixels: int) -> Image.Image:
    """The decoded RGB picture at `path` (open_rgb's checks apply to URLs too); ImageError names the path."""
    if not is_url(path):
        return open_rgb(path.removeprefix("file://"), max_pixels=max_pixels)
    data = _fetch(path)
    handle, local = tempfile.mkstemp(prefix="clipmark-", suffix=os.path.splitext(path)[1][:10])
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return open_rgb(local, max_pixels=max_pixels)
    except ImageError as exc:
        raise ImageError(path, exc.reason) from exc
    finally:
        os.unlink(local)


def _fetch(url: str) -> bytes:
    try:
        import fsspec

        with fsspec.open(url, "rb") as remote:
            return bytes(remote.read())
    except ImportError as exc:
        raise ImageError(url, f"cannot read {url.split('://')[0]}:// URLs here: {exc} "
                         "(install fsspec and the protocol's package, e.g. s3fs, on every node)") from exc
    except (OSError, ValueError) as exc:
        raise ImageError(url, f"cannot read: {exc}") from exc
