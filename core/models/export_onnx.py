"""Export a project's classifier as one ONNX graph: CLIP image encoder + the adapted head.

The graph computes exactly `core.labeling.adapt.Classifier.predict_proba` on the encoder's
L2-normalised features: `z = scale * e @ T.T`, plus, on the rows whose top-1 minus top-2 zero-shot gap
is <= `gate`, the probe `e @ Delta + offset` (the centring `-mu @ Delta` folded into `offset`) and the
semi-supervised class means `w * log_softmax(s * unit(e - c) @ M.T)` (unseen classes: the mean of the
seen ones), then a softmax. A classifier uses one of the two; the other's arrays are zero.
Input `image` (batch, 3, S, S) float32, already resized, cropped and normalised as the
config says; output `probs` (batch, K). The batch axis is dynamic. torch is imported inside functions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInput

OPSET = 17
HEAD_KEYS = ("text_head", "logit_scale", "delta", "offset", "gate", "means", "means_center", "means_scale",
             "means_known", "means_weight")


def check_head_arrays(arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """(K, D) of a head given as arrays: text_head K x D, logit_scale (1,), delta D x K, offset K, gate (1,)."""
    missing = [key for key in HEAD_KEYS if key not in arrays]
    if missing:
        raise InvalidInput(f"head: missing arrays {missing}; expected {list(HEAD_KEYS)}")
    k, d = arrays["text_head"].shape
    if arrays["delta"].shape != (d, k) or arrays["offset"].shape != (k,):
        raise InvalidInput(f"head: delta must be {d} x {k} and offset {k}, got {arrays['delta'].shape} "
                           f"and {arrays['offset'].shape}")
    return k, d


def _head_module(arrays: dict[str, np.ndarray]) -> Any:
    import torch

    class Head(torch.nn.Module):
        text_head: torch.Tensor
        logit_scale: torch.Tensor
        delta: torch.Tensor
        offset: torch.Tensor
        gate: torch.Tensor
        means: torch.Tensor
        means_center: torch.Tensor
        means_scale: torch.Tensor
        means_known: torch.Tensor
        means_weight: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            for key in HEAD_KEYS:
                self.register_buffer(key, torch.from_numpy(np.asarray(arrays[key], dtype=np.float32).copy()))

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            e = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            z = (e @ self.text_head.T) * self.logit_scale
            top = torch.topk(z, k=min(2, z.shape[1]), dim=1).values
            gap = top[:, 0] - top[:, -1]
            passed = (gap <= self.gate).to(z.dtype).unsqueeze(1)
            return torch.softmax(z + passed * (e @ self.delta + self.offset + self._means(e)), dim=1)

        def _means(self, e: torch.Tensor) -> torch.Tensor:
            x = e - self.means_center
            x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            zm = (x @ self.means.T) * self.means_scale
            known = self.means_known
            filler = (zm * known).sum(dim=1, keepdim=True) / known.sum().clamp_min(1.0)
            zm = zm * known + filler * (1.0 - known)
            return torch.log_softmax(zm, dim=1) * self.means_weight

    return Head()


def _clip_classifier(encoder: Any, arrays: dict[str, np.ndarray]) -> Any:
    import torch

    class ClipClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = _head_module(arrays)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.head(self.encoder.encode_image(image).float())

    return ClipClassifier().eval().cpu()


def export_clip_head(module: Any, arrays: dict[str, np.ndarray], path: str | Path, *, image_size: int,
                     opset: int = OPSET) -> Path:
    """Write `module.encode_image` + the head as one ONNX file (dynamic batch axis)."""
    import copy

    check_head_arrays(arrays)
    graph = _clip_classifier(copy.deepcopy(module).float().cpu(), arrays)
    return export_graph(graph, path, image_size=image_size, opset=opset)


def export_graph(graph: Any, path: str | Path, *, image_size: int, opset: int = OPSET) -> Path:
    """`graph(image) -> probs` as ONNX through torch's TorchScript exporter, batch axis dynamic."""
    import torch

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, image_size, image_size)
    # Grad mode on: under no_grad nn.MultiheadAttention takes its fused fast path, which ONNX cannot express.
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph.eval(), (example,), str(target), input_names=["image"], output_names=["probs"],
                          dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    return target


def preprocess_config(compose: Any) -> dict[str, Any]:
    """The resize / crop / normalise steps of an open_clip (torchvision) eval transform, as plain values."""
    config: dict[str, Any] = {"resize": "shortest", "interpolation": "bicubic"}
    for step in getattr(compose, "transforms", []):
        name = type(step).__name__
        if name == "Resize":
            size = step.size if isinstance(step.size, int) else min(step.size)
            config["resize_size"] = int(size)
            config["interpolation"] = str(getattr(step.interpolation, "value", step.interpolation))
        elif name == "CenterCrop":
            config["crop_size"] = int(step.size[0] if not isinstance(step.size, int) else step.size)
        elif name == "Normalize":
            config["mean"], config["std"] = [float(v) for v in step.mean], [float(v) for v in step.std]
    missing = [key for key in ("resize_size", "crop_size", "mean", "std") if key not in config]
    if missing:
        raise InvalidInput(f"preprocess: the model's transform lacks {missing}: {compose}")
    config["image_size"] = config["crop_size"]
    return config


def save_arrays(arrays: dict[str, np.ndarray], path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.numpy import save_file

    target = Path(path)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, str(target),
              metadata=metadata)
    return target
