"""Run an exported clipmark model (a folder with model.onnx + config.json) with onnxruntime.

Only numpy, PIL and onnxruntime here (no torch): `pip install clipmark[classify]` is enough to run
it. The preprocessing repeats torchvision's eval transform on PIL images: resize the shortest side
(bicubic, PIL's antialiasing resize, as torchvision does for PIL input), centre crop (torchvision's
rounding), scale to [0, 1], normalise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import ImageError, InvalidInput, ModelLoadError
from core.io.images import DEFAULT_MAX_PIXELS, centre_band, open_rgb

CONFIG_KEYS = ("class_names", "preprocess", "kind")
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
              "nearest": Image.Resampling.NEAREST}


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """config.json of an exported model folder, checked; a clear error for a missing or broken folder."""
    root = Path(folder)
    if not root.is_dir():
        raise ModelLoadError(f"--model: {root} is not a folder; give the folder `clipmark train --out` wrote")
    for name in ("config.json", "model.onnx"):
        if not (root / name).is_file():
            raise ModelLoadError(f"--model: {root / name} is missing; not an exported clipmark model folder")
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"--model: {root / 'config.json'} is not valid JSON: {exc}") from exc
    missing = [key for key in CONFIG_KEYS if not isinstance(config, dict) or key not in config]
    if missing:
        raise ModelLoadError(f"--model: {root / 'config.json'} lacks {missing}")
    problem = _config_problem(config)
    if problem:
        raise ModelLoadError(f"--model: {root / 'config.json'}: {problem}")
    return config


def _config_problem(config: dict[str, Any]) -> str | None:
    """What is wrong with the fields `preprocess` and `run` read, or None."""
    names = config["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        return "class_names must be a list of at least two non-empty names"
    pre = config["preprocess"]
    if not isinstance(pre, dict):
        return "preprocess must be an object"
    for key in ("resize_size", "crop_size"):
        value = pre.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
            return f"preprocess.{key} must be a whole number from 1 to 4096, got {value!r}"
    for key in ("mean", "std"):
        value = pre.get(key)
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
                or (key == "std" and not all(v > 0 for v in value))):
            return f"preprocess.{key} must be three finite numbers{' > 0' if key == 'std' else ''}, got {value!r}"
    if str(pre.get("interpolation", "bicubic")) not in RESAMPLING:
        return f"preprocess.interpolation must be one of {', '.join(RESAMPLING)}, got {pre.get('interpolation')!r}"
    return None


def preprocess(image: Image.Image, config: dict[str, Any]) -> np.ndarray:
    """(3, S, S) float32: torchvision's Resize(shortest) + CenterCrop + ToTensor + Normalize on PIL (on
    the image's centre band: see core.io.images.centre_band)."""
    image = centre_band(image)
    size, crop = int(config["resize_size"]), int(config["crop_size"])
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short != size:
        new_short, new_long = size, int(size * long / short)
        new = (new_short, new_long) if width <= height else (new_long, new_short)
        image = image.resize(new, RESAMPLING.get(str(config.get("interpolation")), Image.Resampling.BICUBIC))
    width, height = image.size
    if width < crop or height < crop:
        padded = Image.new("RGB", (max(width, crop), max(height, crop)))
        padded.paste(image, ((max(width, crop) - width) // 2, (max(height, crop) - height) // 2))
        image, (width, height) = padded, padded.size
    top, left = int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    scaled = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    pixels = (scaled - np.asarray(config["mean"], dtype=np.float32)) / np.asarray(config["std"], dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)


def _check_graph(session: Any, config: dict[str, Any], path: Path) -> None:
    """The graph takes `image` (B, 3, S, S) with S the config's crop size and gives `probs` (B, K) with
    K its class names: otherwise every batch would fail inside onnxruntime."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    crop, k = config["preprocess"]["crop_size"], len(config["class_names"])
    shape = inputs.get("image")
    if shape is None or "probs" not in outputs:
        raise ModelLoadError(f"--model: {path} takes {sorted(inputs)} and gives {sorted(outputs)}; "
                             "an exported clipmark model takes `image` and gives `probs`")
    wanted = (3, crop, crop)
    if len(shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], wanted, strict=True)):
        raise ModelLoadError(f"--model: {path} takes images of shape {shape}; config.json's crop_size is {crop}")
    width = outputs["probs"][-1] if outputs["probs"] else None
    if isinstance(width, int) and width != k:
        raise ModelLoadError(f"--model: {path} scores {width} classes; config.json names {k}")


@dataclass
class OnnxClassifier:
    folder: Path
    config: dict[str, Any]
    session: Any

    @classmethod
    def load(cls, folder: str | Path) -> OnnxClassifier:
        import onnxruntime

        config = read_model_config(folder)
        try:
            session = onnxruntime.InferenceSession(str(Path(folder) / "model.onnx"),
                                                   providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a corrupt graph
            raise ModelLoadError(f"--model: {Path(folder) / 'model.onnx'} cannot be loaded: {exc}") from exc
        _check_graph(session, config, Path(folder) / "model.onnx")
        return cls(Path(folder), config, session)

    @property
    def class_names(self) -> list[str]:
        return [str(name) for name in self.config["class_names"]]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """(B, K) probabilities of a preprocessed batch."""
        return np.asarray(self.session.run(["probs"], {"image": pixels})[0], dtype=np.float32)

    def predict_files(self, paths: Sequence[str | Path], *, batch_size: int = 32,
                      max_pixels: int = DEFAULT_MAX_PIXELS,
                      on_progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, list[int], list[str]]:
        """(probs of the decodable files, their positions in `paths`, errors as 'path: reason')."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size: must be an integer >= 1, got {batch_size!r}")
        probs, kept, errors = [], [], []
        for start in range(0, len(paths), batch_size):
            batch, positions = [], []
            for position in range(start, min(start + batch_size, len(paths))):
                try:
                    image = open_rgb(paths[position], max_pixels=max_pixels)
                    batch.append(preprocess(image, self.config["preprocess"]))
                    positions.append(position)
                except ImageError as exc:
                    errors.append(f"{paths[position]}: {exc.reason}")
            if batch:
                probs.append(self.run(np.stack(batch)))
                kept.extend(positions)
            if on_progress:
                on_progress(min(start + batch_size, len(paths)))
        empty = np.zeros((0, len(self.class_names)), dtype=np.float32)
        return (np.concatenate(probs) if probs else empty), kept, errors
