"""Where Segment Anything weights come from: the registry of builders (vit_b/l/h from
segment_anything, vit_t from mobile_sam, clipmark's tiny Sam), local checkpoint files, and the
official download for users who are online. torch and the SAM packages are imported lazily."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ModelLoadError
from core.models.sam_tiny import TINY_NAME, build_tiny_sam

SAM_URLS = {
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
}
MOBILE_SAM_REPO = "https://github.com/ChaoningZhang/MobileSAM"
DEFAULT_CACHE_DIR = "~/.cache/clipmark/sam"
DOWNLOAD_TIMEOUT_S = 10.0


def sam_checkpoint_help(name: str) -> str:
    """The sentence every segmenter-loading error ends with: how to use a local checkpoint."""
    if name in SAM_URLS:
        source = f"download {SAM_URLS[name]} on a machine with internet"
    elif name == "vit_t":
        source = f"download weights/mobile_sam.pt from the MobileSAM repository ({MOBILE_SAM_REPO})"
    else:
        source = "write one with core.models.sam_tiny.save_tiny_sam_checkpoint, or use --sam-checkpoint random"
    return (
        f"To use a local checkpoint: --sam-model {name} --sam-checkpoint /path/to/file.pth, or set "
        f"CLIPMARK_SAM_MODEL={name} and CLIPMARK_SAM_CHECKPOINT=/path/to/file.pth. To get one, {source}."
    )


def import_library(package: str) -> Any:
    """segment_anything or mobile_sam, imported when a segmenter is first built (never at start-up)."""
    with warnings.catch_warnings():  # mobile_sam imports timm, which warns about its deprecated paths
        warnings.simplefilter("ignore")
        return importlib.import_module(package)


def _read_state(path: str, name: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors of many kinds
        raise ModelLoadError(f"sam-checkpoint: cannot read {path}: {exc}. " + sam_checkpoint_help(name)) from exc
    if not isinstance(state, dict):
        raise ModelLoadError(f"sam-checkpoint: {path} is not a state dict. " + sam_checkpoint_help(name))
    return state


def _with_weights(build: Callable[[], Any], checkpoint: str | None, name: str) -> Any:
    """Build the module (random weights), then load `checkpoint` into it; the file is read first."""
    state = None if checkpoint is None else _read_state(checkpoint, name)
    module = build()
    if state is not None:
        try:
            module.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"sam-checkpoint: {checkpoint} is not a {name} checkpoint: {str(exc)[:400]}. "
                + sam_checkpoint_help(name)
            ) from exc
    return module.eval()


def _registry_builder(package: str, name: str) -> Callable[[str | None], Any]:
    def build(checkpoint: str | None = None) -> Any:
        return _with_weights(import_library(package).sam_model_registry[name], checkpoint, name)

    build.__name__ = f"build_{name}"
    return build


def _build_tiny(checkpoint: str | None = None) -> Any:
    return _with_weights(build_tiny_sam, checkpoint, TINY_NAME)


# name -> builder(checkpoint path or None for random weights) -> Sam
SEGMENTERS: dict[str, Callable[[str | None], Any]] = {
    "vit_b": _registry_builder("segment_anything", "vit_b"),
    "vit_l": _registry_builder("segment_anything", "vit_l"),
    "vit_h": _registry_builder("segment_anything", "vit_h"),
    "vit_t": _registry_builder("mobile_sam", "vit_t"),
    TINY_NAME: _build_tiny,
}


def existing_file(path: str, name: str) -> str:
    """The checkpoint path with ~ expanded; ModelLoadError naming the flags when there is no such file."""
    resolved = os.path.expanduser(path)
    if not os.path.isfile(resolved):
        raise ModelLoadError(f"sam-checkpoint: file not found: {path}. " + sam_checkpoint_help(name))
    return resolved


def download_checkpoint(name: str, *, cache_dir: str | Path | None = None) -> str:
    """The official checkpoint of `name` in `cache_dir`, downloaded once (atomically); fails fast offline."""
    url = SAM_URLS[name]
    folder = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser()
    target = folder / url.rsplit("/", 1)[-1]
    if target.is_file():
        return str(target)
    partial = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            expected = int(response.headers.get("Content-Length") or -1)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", delete=False) as handle:
                partial = handle.name
                shutil.copyfileobj(response, handle, 1 << 20)
        if expected >= 0 and os.path.getsize(partial) != expected:
            raise OSError(f"incomplete download ({os.path.getsize(partial)} of {expected} bytes)")
        os.replace(partial, target)
    except (OSError, ValueError) as exc:  # URLError and socket timeouts are OSErrors
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        raise ModelLoadError(
            f"sam-checkpoint: cannot download the {name} weights from {url} into {folder}: {exc}. "
            + sam_checkpoint_help(name)
        ) from exc
    return str(target)
