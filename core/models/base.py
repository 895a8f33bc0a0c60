"""What every image-text model looks like to the rest of clipmark (no torch imported here).

`ModelSpec` names a model and its weights; its `model_id` is the cache key of the embeddings.
`ImageTextModel` is the protocol the adapters (core.models.clip) implement.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from core.errors import InvalidInput, ModelLoadError

if TYPE_CHECKING:
    import torch
    from PIL import Image

WeightSource = Literal["hub", "file", "random"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")
HUB_BROWSE_URL = "https://huggingface.co/models?library=open_clip"
_CHUNK = 1 << 20


def local_checkpoint_help(arch: str) -> str:
    """The sentence every model-loading error ends with: how to use a local checkpoint."""
    return (
        f"To use a local checkpoint: --model {arch} --pretrained "
        "/path/to/open_clip_pytorch_model.bin (a .pt/.bin/.safetensors open_clip state dict), "
        f"or set CLIPMARK_MODEL={arch} and CLIPMARK_PRETRAINED=/path/to/open_clip_pytorch_model.bin. "
        f"To get one, on a machine with internet download open_clip_pytorch_model.bin (or "
        f"open_clip_model.safetensors) from the model's Hugging Face repository ({HUB_BROWSE_URL}), "
        "or run once with --pretrained <tag> to fill the Hugging Face cache (~/.cache/huggingface)."
    )


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_config_json(path: str | Path) -> dict[str, Any]:
    """An open_clip model config from a JSON file (bare, or wrapped as {"model_cfg": ...})."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"config: cannot read model-config JSON {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):
        data = data["model_cfg"]
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if not isinstance(data, dict) or k not in data]
    if missing:
        raise InvalidInput(f"config: {path} is not an open_clip model config; missing {missing}")
    return data


def config_hash(model_cfg: dict[str, Any]) -> str:
    """First 16 hex of the sha256 of the canonical JSON of a model config."""
    canonical = json.dumps(model_cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def looks_like_path(value: str) -> bool:
    """True when `pretrained` names a file rather than an open_clip hub tag."""
    return os.path.isfile(value) or "/" in value or os.sep in value or value.lower().endswith(CHECKPOINT_SUFFIXES)


@dataclass(frozen=True)
class ModelSpec:
    """An open_clip architecture plus where its weights come from."""

    arch: str
    pretrained: str | None = None
    config: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch.strip():
            raise InvalidInput("arch: must be a non-empty open_clip architecture name")
        if self.pretrained is not None and not str(self.pretrained).strip():
            raise InvalidInput("pretrained: must be a hub tag, a checkpoint path, or None")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InvalidInput(f"seed: must be a non-negative integer, got {self.seed!r}")

    @property
    def source(self) -> WeightSource:
        """Where the weights come from: 'hub' tag, local 'file', or 'random' init."""
        if self.pretrained is None:
            return "random"
        return "file" if looks_like_path(self.pretrained) else "hub"

    @cached_property
    def model_id(self) -> str:
        """Stable cache key, e.g. 'ViT-B-32@laion2b_s34b_b79k', 'ViT-B-32@file:<sha16>'."""
        arch = self.arch
        if self.config is not None:
            arch = f"{arch}+cfg:{config_hash(read_config_json(self.config))}"
        return f"{arch}@{self._weights_id()}"

    def _weights_id(self) -> str:
        if self.pretrained is None:
            return f"random:{self.seed}"
        if self.source == "hub":
            return self.pretrained
        if not os.path.isfile(self.pretrained):
            raise ModelLoadError(
                f"pretrained: checkpoint file not found: {self.pretrained}. " + local_checkpoint_help(self.arch)
            )
        return f"file:{file_sha256(self.pretrained)[:16]}"


@dataclass(frozen=True)
class EmbeddedBatch:
    """One batch out of `embed_images`: rows of `embeddings` belong to `positions`."""

    positions: np.ndarray  # int64 indices into the input paths, in order
    embeddings: np.ndarray  # (len(positions), D) float32, L2-normalised
    errors: list[tuple[int, str]]  # (position, reason) of files that could not be used


class ImageTextModel(Protocol):
    """A CLIP-style dual encoder: images and texts into one L2-normalised space."""

    model_id: str
    embed_dim: int
    logit_scale: float
    device: str
    preprocess: Callable[[Image.Image], torch.Tensor]  # picklable (runs in DataLoader workers)

    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        """(B, D) float32, L2-normalised."""
        ...

    def encode_pictures(self, pictures: Sequence[Image.Image]) -> np.ndarray:
        """(N, D) float32, L2-normalised: decoded images, e.g. the masked crops of regions."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(T, D) float32, L2-normalised."""
        ...
