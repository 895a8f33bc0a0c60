"""Inputs of `clipmark simulate` from images: a manifest CSV + a model -> SimData (embeddings, true
labels, the zero-shot head built from the class names with the default prompt ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import InvalidInput
from core.io.sources import read_label_csv
from core.labeling.simulate import SimData
from core.labeling.zeroshot import class_prompts, text_head
from core.models.base import ModelSpec
from core.models.clip import embed_images, load_image_text_model


def sim_data_from_manifest(
    manifest: str | Path, *, root: str | Path, spec: ModelSpec, batch_size: int = 32, device: str | None = None,
    progress: bool = True,
) -> tuple[SimData, float]:
    labels, problems = read_label_csv(manifest)
    if problems:
        raise InvalidInput(f"{manifest}: {problems[0].source}: {problems[0].reason}")
    if not labels:
        raise InvalidInput(f"{manifest}: no rows of path,label")
    paths = sorted(labels)
    names = sorted(set(labels.values()))
    model = load_image_text_model(spec, device=device)
    chunks: list[np.ndarray] = []
    kept: list[int] = []
    for batch in embed_images(model, [str(Path(root) / p) for p in paths], batch_size=batch_size, progress=progress):
        if batch.errors:
            position, reason = batch.errors[0]
            raise InvalidInput(f"{paths[position]}: {reason}")
        chunks.append(batch.embeddings)
        kept.extend(int(p) for p in batch.positions)
    head = text_head(model.encode_texts, [class_prompts(name) for name in names])
    y = np.array([names.index(labels[paths[p]]) for p in kept], dtype=np.int64)
    return SimData(np.concatenate(chunks), y, names, head), float(model.logit_scale)
