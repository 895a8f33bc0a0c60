"""A small timm network distilled from the CLIP classifier: build, train (resumable), evaluate, export.

Targets are soft: one-hot for human labels, the CLIP classifier's probabilities for confident
pseudo-labels; the loss is the cross-entropy against them (knowledge distillation at temperature 1).
Images decode in DataLoader workers through core.io (a file that fails is skipped and counted);
augmentation is timm's training transform; mixed precision (bf16/fp16 autocast) on CUDA. A checkpoint
(model, optimizer, scaler, step, epoch, the epoch's order) is written every `checkpoint_every` steps
and at each epoch's end, so `resume=True` continues where an interrupted run stopped.
torch and timm are imported inside functions only.
"""

from __future__ import annotations

import difflib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ImageError, InvalidInput, ModelLoadError
from core.io.images import DEFAULT_MAX_PIXELS, centre_band, open_rgb
from core.models.export_onnx import export_graph

STUDENTS = ("mobilenetv3_small_100", "resnet18", "efficientnet_b0")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT = "checkpoint.pt"


def check_student_name(name: str) -> str:
    """`name` if timm knows it; else an error listing the close matches and the suggested ones."""
    import timm

    known = timm.list_models()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    raise InvalidInput(f"--student: timm has no model {name!r}"
                       + (f" (close: {', '.join(close)})" if close else "")
                       + f"; suggested: {', '.join(STUDENTS)}")


def build_student(name: str, *, num_classes: int, pretrained: bool, seed: int = 0) -> tuple[Any, str]:
    """(module, weights note): ImageNet weights when asked and reachable, random init otherwise."""
    import timm
    import torch

    check_student_name(name)
    torch.manual_seed(seed)
    if pretrained:
        try:
            return timm.create_model(name, pretrained=True, num_classes=num_classes), "ImageNet-pretrained (timm)"
        except Exception as exc:  # offline, no weights for this name, hub errors of many kinds
            note = f"random init (ImageNet weights unavailable: {type(exc).__name__})"
            return timm.create_model(name, pretrained=False, num_classes=num_classes), note
    return timm.create_model(name, pretrained=False, num_classes=num_classes), "random init"


def default_workers() -> int:
    """Decoding workers. On a CPU decoding + augmenting a batch costs a few % of its training step, so
    overlapping it gains little, while a worker process takes a core from torch's compute threads: on
    2 cores, 0 workers ran at 0.94-0.97 of the bare model's images/s and 1 worker at 0.86-0.91
    (bench/train.py). So 0 on a CPU with 2 cores or fewer, 1 above that; on a GPU, where the step is
    fast and decoding is the bottleneck, up to 8."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not torch.cuda.is_available():
        return 1 if cores > 2 else 0
    return max(1, min(8, cores - 1))


def eval_preprocess(image_size: int) -> dict[str, Any]:
    """The student's inference preprocessing, in the config form core.models.onnx_runtime reads."""
    return {"resize": "shortest", "interpolation": "bicubic", "resize_size": image_size, "crop_size": image_size,
            "image_size": image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


class _Images:
    """position -> (position, tensor) or (position, None) when the file does not decode."""

    def __init__(self, paths: Sequence[str], transform: Any, max_pixels: int) -> None:
        self.paths, self.transform, self.max_pixels = list(paths), transform, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> tuple[int, Any]:
        try:
            return position, self.transform(centre_band(open_rgb(self.paths[position], max_pixels=self.max_pixels)))
        except (ImageError, OSError, ValueError):
            return position, None


def _collate(items: list[tuple[int, Any]]) -> tuple[Any, Any, list[int]]:
    import torch

    good = [(p, x) for p, x in items if x is not None]
    bad = [p for p, x in items if x is None]
    positions = torch.tensor([p for p, _ in good], dtype=torch.long)
    return positions, (torch.stack([x for _, x in good]) if good else None), bad


@dataclass
class TrainSettings:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    image_size: int = 224
    num_workers: int | None = None   # None: default_workers()
    checkpoint_every: int = 50
    max_pixels: int = DEFAULT_MAX_PIXELS
    seed: int = 0


@dataclass
class TrainLog:
    steps: int = 0
    seen: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)
    resumed_from: int | None = None
    stopped: bool = False            # `on_step` asked to stop: the checkpoint holds the run so far

    @property
    def images_per_second(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0


StepHook = Callable[[int, int, float, float], bool]  # (step, total steps, loss, images/s) -> keep going


def train_student(module: Any, paths: Sequence[str], targets: np.ndarray, *, settings: TrainSettings,
                  workdir: str | Path, resume: bool = False, on_step: StepHook | None = None) -> TrainLog:
    """Train `module` on (paths, soft targets N x K); checkpoints in `workdir`. Returns what happened."""
    import torch
    from timm.data import create_transform

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # timm's training transforms draw from Python's `random` (and torch's) in the loading process:
    # seeded here, a run is repeatable (the DataLoader seeds its workers from torch's generator)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    module.to(device).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda")
    log, state = TrainLog(), {"step": 0, "epoch": 0}
    checkpoint = Path(workdir) / CHECKPOINT
    if resume:
        state = _load_checkpoint(checkpoint, module, optimizer, scaler)
        log.resumed_from = state["step"]
    transform = create_transform(settings.image_size, is_training=True, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    data = _Images(paths, transform, settings.max_pixels)
    soft = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    per_epoch = -(-len(data) // settings.batch_size)
    total = per_epoch * settings.epochs
    for epoch in range(state["epoch"], settings.epochs):
        skip = state["step"] - epoch * per_epoch
        loader = _loader(data, settings, epoch=epoch, skip_batches=skip, device=device)
        if not _epoch(module, loader, soft, optimizer, scaler, log=log, state=state, total=total,
                      settings=settings, device=device, checkpoint=checkpoint, on_step=on_step):
            _save_checkpoint(checkpoint, module, optimizer, scaler, state)
            log.stopped = True
            return log
        state["epoch"] = epoch + 1
        _save_checkpoint(checkpoint, module, optimizer, scaler, state)
    return log


def _loader(data: _Images, settings: TrainSettings, *, epoch: int, skip_batches: int, device: str) -> Any:
    """This epoch's batches in a seeded order (the same after a resume), the first `skip_batches` left out."""
    import torch
    from torch.utils.data import DataLoader

    order = np.random.default_rng([settings.seed, epoch]).permutation(len(data))
    order = order[max(0, skip_batches) * settings.batch_size:]
    workers = default_workers() if settings.num_workers is None else settings.num_workers
    workers = workers if len(order) > settings.batch_size else 0
    return DataLoader(torch.utils.data.Subset(data, order.tolist()),  # type: ignore[arg-type]
                      batch_size=settings.batch_size,
                      shuffle=False, num_workers=workers, collate_fn=_collate, pin_memory=device == "cuda",
                      persistent_workers=False)


def _epoch(module: Any, loader: Any, soft: Any, optimizer: Any, scaler: Any, *, log: TrainLog,
           state: dict[str, int], total: int, settings: TrainSettings, device: str, checkpoint: Path,
           on_step: StepHook | None) -> bool:
    """One pass; False when `on_step` asked to stop. `log.seconds` is wall time from the first batch on,
    waits for the loader included (the workers' start-up before it is not): the loop's real throughput."""
    import torch

    tick = None
    for positions, pixels, bad in loader:
        log.failed.update(bad)
        if pixels is None:
            state["step"] += 1
            continue
        tick = tick or time.perf_counter()
        loss = _step(module, pixels.to(device, non_blocking=True), soft[positions].to(device), optimizer, scaler,
                     device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        log.seconds, tick = log.seconds + now - tick, now
        log.seen += len(positions)
        log.steps, state["step"] = log.steps + 1, state["step"] + 1
        log.losses.append(loss)
        if state["step"] % settings.checkpoint_every == 0:
            _save_checkpoint(checkpoint, module, optimizer, scaler, state)
        if on_step is not None and not on_step(state["step"], total, loss, log.images_per_second):
            return False
    return True


def _step(module: Any, pixels: Any, targets: Any, optimizer: Any, scaler: Any, *, device: str) -> float:
    import torch

    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    with torch.autocast(device_type="cuda", dtype=dtype, enabled=device == "cuda"):
        logits = module(pixels)
    loss = -(targets * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _save_checkpoint(path: Path, module: Any, optimizer: Any, scaler: Any, state: dict[str, int]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    torch.save({"model": module.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                **state}, partial)
    partial.replace(path)


def _load_checkpoint(path: Path, module: Any, optimizer: Any, scaler: Any) -> dict[str, int]:
    import torch

    if not path.is_file():
        raise ModelLoadError(f"--resume: no checkpoint at {path}; run without --resume to start")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
    except Exception as exc:  # torch/pickle errors of many kinds: a corrupt or foreign file
        raise ModelLoadError(f"--resume: {path} is not a checkpoint of this student: {exc}") from exc
    return {"step": int(saved["step"]), "epoch": int(saved["epoch"])}


def predict(module: Any, paths: Sequence[str], *, image_size: int, batch_size: int = 64, num_workers: int = 0,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[int]]:
    """(probs of the decodable files, their positions): the eval transform, no augmentation."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import transforms

    device = next(module.parameters()).device
    transform = transforms.Compose([
        transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(image_size), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    loader: Any = DataLoader(_Images(paths, transform, max_pixels),  # type: ignore[arg-type]
                         batch_size=batch_size, num_workers=num_workers,
                        collate_fn=_collate)
    probs, kept = [], []
    module.eval()
    with torch.inference_mode():
        for positions, pixels, _ in loader:
            if pixels is not None:
                probs.append(torch.softmax(module(pixels.to(device)).float(), dim=1).cpu().numpy())
                kept.extend(positions.tolist())
    return (np.concatenate(probs) if probs else np.zeros((0, 0), np.float32)), kept


def export_student(module: Any, folder: str | Path, *, image_size: int, metadata: dict[str, str]) -> None:
    """model.onnx (image -> probs, dynamic batch) and model.safetensors of the trained student."""
    import torch
    from safetensors.torch import save_file

    module = module.float().cpu().eval()
    graph = torch.nn.Sequential(module, torch.nn.Softmax(dim=1))
    export_graph(graph, Path(folder) / "model.onnx", image_size=image_size)
    state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(Path(folder) / "model.safetensors"), metadata=metadata)
