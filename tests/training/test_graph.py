"""The ONNX head on synthetic classifiers of both kinds the live state fits: the gated probe
(Delta on centred features) and the semi-supervised class means (with a class never seen)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.labeling.adapt import Classifier
from core.labeling.classmeans import ClassMeans
from core.models.export_onnx import export_clip_head
from core.usecases.training.data import head_arrays

K = 5


@pytest.fixture(scope="module")
def clip():
    from core.models.clip import load_image_text_model
    from core.models.tiny import tiny_spec

    return load_image_text_model(tiny_spec(seed=3), device="cpu")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _check(clip, classifier: Classifier, folder: Path) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime
    import torch

    rng = np.random.default_rng(1)
    pixels = rng.normal(size=(48, 3, 32, 32)).astype(np.float32)
    features = clip.encode_images(torch.from_numpy(pixels))
    export_clip_head(clip.module, head_arrays(classifier, clip.embed_dim), folder / "model.onnx", image_size=32)
    got = onnxruntime.InferenceSession(str(folder / "model.onnx")).run(["probs"], {"image": pixels})[0]
    np.testing.assert_allclose(got, classifier.predict_proba(features), atol=1e-4, rtol=0)
    gaps = np.sort(classifier.zero_shot_logits(features), axis=1)
    gaps = gaps[:, -1] - gaps[:, -2]
    assert 0 < (gaps <= classifier.gate).sum() < 48  # the gate lets some rows through, not all


def _base(dim: int, rng: np.random.Generator) -> Classifier:
    head = _unit(rng.normal(size=(K, dim)))
    return Classifier(head, 30.0, K, None, None, "synthetic", 10, None, None, None)


def _gate(classifier: Classifier, clip) -> float:  # type: ignore[no-untyped-def]
    import torch

    pixels = np.random.default_rng(1).normal(size=(48, 3, 32, 32)).astype(np.float32)
    z = np.sort(classifier.zero_shot_logits(clip.encode_images(torch.from_numpy(pixels))), axis=1)
    return float(np.median(z[:, -1] - z[:, -2]))


def test_the_graph_is_the_gated_probe(clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    base = _base(clip.embed_dim, rng)
    classes = np.array([0, 2, 3])
    mu = _unit(rng.normal(size=clip.embed_dim))
    weights = rng.normal(0, 3, size=(clip.embed_dim, classes.size)).astype(np.float32)
    probe = replace(base, weights=weights, offset=-(mu @ weights).astype(np.float32), classes=classes,
                    gate=_gate(base, clip))
    _check(clip, probe, tmp_path)


def test_the_graph_is_the_class_means(clip, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    base = _base(clip.embed_dim, rng)
    known = np.array([True, True, False, True, True])
    means = _unit(rng.normal(size=(K, clip.embed_dim))) * known[:, None]
    class_means = ClassMeans(means=means.astype(np.float32), center=_unit(rng.normal(size=clip.embed_dim)) * 0.5,
                             scale=20.0, known=known)
    _check(clip, replace(base, means=class_means, means_weight=1.0, gate=_gate(base, clip)), tmp_path)
