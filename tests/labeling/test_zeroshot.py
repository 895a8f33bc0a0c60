"""Zero-shot heads and probabilities; the pipeline equals open_clip's own computation."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInput
from core.labeling.zeroshot import (
    DEFAULT_TEMPLATES,
    IMAGENET_SELECTED_TEMPLATES,
    class_prompts,
    prompts_hash,
    text_head,
    zero_shot_probs,
)

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 64


def cifar_sample(cifar_dir: Path, n: int) -> tuple[list[Path], list[str]]:
    """`n` images spread over the manifest (all classes), and the class names."""
    with open(cifar_dir / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = rows[:: max(1, len(rows) // n)][:n]
    classes = sorted({row["label"] for row in rows})
    return [cifar_dir / row["relative_path"] for row in picked], classes


@pytest.fixture(scope="module")
def tiny_model():
    from core.models.clip import load_image_text_model
    from core.models.tiny import tiny_spec

    return load_image_text_model(tiny_spec(seed=0), device="cpu")


def direct_open_clip_probs(model, paths: list[Path], prompts: list[list[str]]) -> np.ndarray:
    """The reference: open_clip's model, transform and tokenizer used by hand, no clipmark code."""
    import open_clip
    import torch
    from PIL import Image

    module, transform = model.module, model.preprocess
    tokenizer = open_clip.get_tokenizer("clipmark-tiny")
    with torch.no_grad():
        pixels = torch.stack([transform(Image.open(path).convert("RGB")) for path in paths])
        images = module.encode_image(pixels)
        images = images / images.norm(dim=-1, keepdim=True)
        flat = [prompt for class_prompts_ in prompts for prompt in class_prompts_]
        texts = module.encode_text(tokenizer(flat))
        texts = texts / texts.norm(dim=-1, keepdim=True)
        head = texts.reshape(len(prompts), len(prompts[0]), -1).mean(dim=1)
        head = head / head.norm(dim=-1, keepdim=True)
        probs = (module.logit_scale.exp() * images @ head.T).softmax(dim=-1)
    return probs.numpy()


def pipeline_probs(model, paths: list[Path], prompts: list[list[str]], *, fp16: bool) -> np.ndarray:
    from core.models.clip import embed_images

    batches = list(embed_images(model, paths, batch_size=16, num_workers=1, progress=False))
    assert all(not batch.errors for batch in batches)
    positions = np.concatenate([batch.positions for batch in batches])
    assert positions.tolist() == list(range(len(paths)))
    embeddings = np.concatenate([batch.embeddings for batch in batches])
    if fp16:  # what the store keeps; re-normalise in float32 as readers do
        embeddings = embeddings.astype(np.float16).astype(np.float32)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    head = text_head(model.encode_texts, prompts)
    return zero_shot_probs(embeddings, head, logit_scale=model.logit_scale)


@pytest.mark.assets
@pytest.mark.parametrize(("fp16", "tolerance"), [(False, 1e-4), (True, 1e-3)])
def test_pipeline_equals_direct_open_clip(tiny_model, cifar_dir, fp16, tolerance):
    paths, classes = cifar_sample(cifar_dir, N_IMAGES)
    prompts = [class_prompts(label) for label in classes]
    expected = direct_open_clip_probs(tiny_model, paths, prompts)
    got = pipeline_probs(tiny_model, paths, prompts, fp16=fp16)
    assert got.shape == (N_IMAGES, len(classes)) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=tolerance, rtol=0)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    # the random model is far from uniform, so the comparison is informative
    assert expected.max() > 2 / len(classes) and len(set(expected.argmax(axis=1))) > 1


def test_default_templates_are_the_clip_18():
    assert len(DEFAULT_TEMPLATES) == 18 and len(set(DEFAULT_TEMPLATES)) == 18
    assert "a photo of a {label}." in DEFAULT_TEMPLATES
    assert "a photo of the big {label}." in DEFAULT_TEMPLATES
    assert len(IMAGENET_SELECTED_TEMPLATES) == 7


def test_class_prompts_fill_templates_with_label_or_description():
    plain = class_prompts("cat")
    assert plain[0] == "a photo of a cat." and len(plain) == len(DEFAULT_TEMPLATES)
    described = class_prompts("tabby", description="a cat with a striped coat.")
    assert described[0] == "a photo of a tabby, a cat with a striped coat."
    custom = class_prompts("cat", templates=("{label}!", "itap of a {label}"))
    assert custom == ["cat!", "itap of a cat"]


def test_custom_prompts_replace_templates():
    prompts = class_prompts("cat", description="ignored", prompts=["a kitten", "a {label} photo"])
    assert prompts == ["a kitten", "a cat photo"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label": ""},
        {"label": "  "},
        {"label": "cat", "prompts": []},
        {"label": "cat", "prompts": ["ok", ""]},
        {"label": "cat", "prompts": "a single string"},
        {"label": "cat", "templates": ["a photo without placeholder"]},
        {"label": "cat", "templates": []},
        {"label": "cat", "description": " "},
    ],
)
def test_class_prompts_validation(kwargs):
    with pytest.raises(InvalidInput):
        class_prompts(kwargs.pop("label"), **kwargs)


def test_prompts_hash_is_stable_and_sensitive():
    prompts = [class_prompts("cat"), class_prompts("dog")]
    digest = prompts_hash(prompts)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert prompts_hash([list(p) for p in prompts]) == digest
    changed = [class_prompts("cat"), class_prompts("dog")[:-1] + ["a photo of a puppy."]]
    assert prompts_hash(changed) != digest
    assert prompts_hash(prompts[::-1]) != digest  # class order matters
    code = (
        "from core.labeling.zeroshot import class_prompts, prompts_hash;"
        "print(prompts_hash([class_prompts('cat'), class_prompts('dog')]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == digest


def fake_encoder(calls: list[int], dim: int = 8):
    """Deterministic text -> vector (not normalised) that records how often it is called."""

    def encode(texts):
        calls.append(len(texts))
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        return np.stack([np.random.default_rng(s).normal(size=dim) * 3 for s in seeds])

    return encode


def test_text_head_is_mean_of_normalised_prompts_in_one_call():
    calls: list[int] = []
    encode = fake_encoder(calls)
    prompts = [["a", "b", "c"], ["d"], ["e", "f"]]
    head = text_head(encode, prompts)
    assert calls == [6]
    assert head.shape == (3, 8) and head.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(head, axis=1), 1, atol=1e-6)
    rows = encode(["e", "f"])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    mean = rows.mean(axis=0)
    np.testing.assert_allclose(head[2], mean / np.linalg.norm(mean), atol=1e-6)


@pytest.mark.parametrize("bad", [[], [[]], [["ok"], [""]], "abc"])
def test_text_head_validation(bad):
    with pytest.raises(InvalidInput):
        text_head(fake_encoder([]), bad)


def test_text_head_rejects_wrong_encoder_shape():
    with pytest.raises(InvalidInput, match="encode_texts"):
        text_head(lambda texts: np.zeros((1, 4)), [["a", "b"]])


def test_zero_shot_probs_is_a_stable_softmax():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(5, 4)).astype(np.float32)
    head = rng.normal(size=(3, 4)).astype(np.float32)
    probs = zero_shot_probs(embeddings, head, logit_scale=2.0)
    logits = 2.0 * embeddings.astype(np.float64) @ head.T.astype(np.float64)
    reference = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, reference, atol=1e-6)
    huge = zero_shot_probs(embeddings * 1e3, head, logit_scale=1e4)
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize(
    ("embeddings", "head", "scale"),
    [
        (np.zeros((2, 4)), np.zeros((3, 5)), 1.0),
        (np.zeros(4), np.zeros((3, 4)), 1.0),
        (np.zeros((2, 4)), np.zeros((0, 4)), 1.0),
        (np.zeros((2, 4)), np.zeros((3, 4)), 0.0),
        (np.zeros((2, 4)), np.zeros((3, 4)), float("nan")),
    ],
)
def test_zero_shot_probs_validation(embeddings, head, scale):
    with pytest.raises(InvalidInput):
        zero_shot_probs(embeddings, head, logit_scale=scale)
