"""Registering open_clip model configs: the tiny test model, and user JSON configs.

The tiny model (~1.7M parameters, 32x32 input) runs the real open_clip code paths on CPU in
milliseconds; tests, the demo and the benches use it with random weights. open_clip keeps its
config registry itself; `register_model_config` only adds to it, and refuses to redefine a name.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.models.base import ModelSpec

TINY_NAME = "clipmark-tiny"
CHECKPOINT_FORMATS = (".pt", ".safetensors")


def tiny_model_config() -> dict[str, Any]:
    """The tiny config: ViT 64 wide, 2 layers, patch 8 on 32x32; text 32 wide, 2 layers."""
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }


def register_model_config(name: str, model_cfg: dict[str, Any]) -> str:
    """Make `name` an open_clip architecture with `model_cfg`; idempotent for the same config."""
    import open_clip

    existing = open_clip.get_model_config(name)
    if existing is not None:
        if existing != model_cfg:
            raise InvalidInput(
                f"arch: {name!r} is already an open_clip architecture with a different config; "
                "give the JSON config a new architecture name"
            )
        return name
    with tempfile.TemporaryDirectory(prefix="clipmark-cfg-") as folder:
        path = Path(folder) / f"{name}.json"
        path.write_text(json.dumps(model_cfg), encoding="utf-8")
        open_clip.add_model_config(path)  # reads the file now; the entry outlives the file
    return name


def register_tiny_config(name: str = TINY_NAME) -> str:
    """Register the tiny config under `name` (idempotent); returns the name."""
    return register_model_config(name, tiny_model_config())


def tiny_spec(seed: int = 0) -> ModelSpec:
    """The tiny model with random weights drawn under `seed`."""
    return ModelSpec(arch=TINY_NAME, pretrained=None, seed=seed)
