"""The open_clip adapter with the tiny model: loading paths, errors, and the embedding pipeline."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInput, ModelLoadError
from core.models.base import ModelSpec
from core.models.clip import embed_images, load_image_text_model, save_tiny_checkpoint, select_device
from core.models.tiny import TINY_NAME, tiny_model_config, tiny_spec

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["a photo of a cat.", "a photo of a dog.", "a truck"]


@pytest.fixture(scope="module")
def tiny():
    return load_image_text_model(tiny_spec(seed=0), device="cpu")


@pytest.fixture(scope="module")
def image_paths(cifar_dir: Path) -> list[Path]:
    return sorted(cifar_dir.glob("*/*.jpg"))[::25][:40]


def embed_all(model, paths, **kwargs) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    batches = list(embed_images(model, paths, progress=False, **kwargs))
    positions = np.concatenate([b.positions for b in batches])
    embeddings = np.concatenate([b.embeddings for b in batches])
    return positions, embeddings, [e for b in batches for e in b.errors]


def test_tiny_model_embeddings_are_normalised(tiny, image_paths):
    assert tiny.model_id == "clipmark-tiny@random:0"
    assert tiny.device == "cpu" and tiny.embed_dim == 64
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)
    texts = tiny.encode_texts(TEXTS)
    _, images, errors = embed_all(tiny, image_paths[:8], batch_size=4)
    assert not errors
    for array, rows in ((texts, len(TEXTS)), (images, 8)):
        assert array.shape == (rows, 64) and array.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1, atol=1e-5)
    assert tiny.encode_texts([]).shape == (0, 64)


def test_random_weights_are_deterministic_per_seed(tiny):
    again = load_image_text_model(tiny_spec(seed=0), device="cpu")
    other = load_image_text_model(tiny_spec(seed=1), device="cpu")
    np.testing.assert_array_equal(again.encode_texts(TEXTS), tiny.encode_texts(TEXTS))
    assert np.abs(other.encode_texts(TEXTS) - tiny.encode_texts(TEXTS)).max() > 1e-3
    assert tiny_spec(0).model_id == tiny_spec(0).model_id == "clipmark-tiny@random:0"
    assert tiny_spec(1).model_id == "clipmark-tiny@random:1"


def test_loading_does_not_touch_the_callers_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_image_text_model(tiny_spec(seed=5), device="cpu")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_local_checkpoint_round_trip(tmp_path, tiny, image_paths, suffix):
    path = save_tiny_checkpoint(tmp_path / f"tiny{suffix}", seed=0)
    spec = ModelSpec(arch=TINY_NAME, pretrained=str(path))
    assert spec.source == "file"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert spec.model_id == f"clipmark-tiny@file:{digest}"
    loaded = load_image_text_model(spec, device="cpu")
    assert loaded.model_id == spec.model_id
    np.testing.assert_array_equal(loaded.encode_texts(TEXTS), tiny.encode_texts(TEXTS))
    _, got, _ = embed_all(loaded, image_paths[:8], num_workers=0)
    _, want, _ = embed_all(tiny, image_paths[:8], num_workers=0)
    np.testing.assert_array_equal(got, want)


def test_checkpoint_hash_follows_content(tmp_path):
    first = save_tiny_checkpoint(tmp_path / "a.pt", seed=0)
    second = save_tiny_checkpoint(tmp_path / "b.pt", seed=1)
    ids = {ModelSpec(arch=TINY_NAME, pretrained=str(p)).model_id for p in (first, second)}
    assert len(ids) == 2


def test_local_config_json_registers_arch(tmp_path, image_paths):
    config = tiny_model_config()
    config["embed_dim"] = 48
    path = tmp_path / "my-config.json"
    path.write_text(json.dumps({"model_cfg": config}))
    arch = f"test-json-{uuid.uuid4().hex[:8]}"
    spec = ModelSpec(arch=arch, config=str(path), seed=2)
    assert spec.model_id.startswith(f"{arch}+cfg:") and spec.model_id.endswith("@random:2")
    model = load_image_text_model(spec, device="cpu")
    assert model.embed_dim == 48
    _, embeddings, _ = embed_all(model, image_paths[:3])
    assert embeddings.shape == (3, 48)
    config["embed_dim"] = 40
    path.write_text(json.dumps(config))
    changed = ModelSpec(arch=arch, config=str(path))
    assert changed.model_id != spec.model_id
    with pytest.raises(InvalidInput, match="different config"):
        load_image_text_model(changed, device="cpu")


def test_bad_config_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"embed_dim": 8}')
    with pytest.raises(InvalidInput, match="vision_cfg"):
        load_image_text_model(ModelSpec(arch="x-bad", config=str(path)), device="cpu")


def test_unknown_arch_lists_choices():
    with pytest.raises(InvalidInput, match="ViT-B-32") as caught:
        load_image_text_model(ModelSpec(arch="ViT-B-33"), device="cpu")
    assert "list_models" in str(caught.value)


def test_missing_checkpoint_says_how_to_point_at_one(tmp_path):
    spec = ModelSpec(arch=TINY_NAME, pretrained=str(tmp_path / "nope.bin"))
    with pytest.raises(ModelLoadError, match="--pretrained"):
        load_image_text_model(spec, device="cpu")
    with pytest.raises(ModelLoadError, match="CLIPMARK_PRETRAINED"):
        _ = spec.model_id


def test_corrupt_checkpoint_is_a_model_load_error(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ModelLoadError, match="--pretrained"):
        load_image_text_model(ModelSpec(arch=TINY_NAME, pretrained=str(path)), device="cpu")


def test_hub_tag_offline_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec(arch="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert spec.source == "hub" and spec.model_id == "ViT-B-32@laion2b_s34b_b79k"
    with pytest.raises(ModelLoadError, match="--pretrained") as caught:
        load_image_text_model(spec, device="cpu")
    assert "unreachable" in str(caught.value)


def test_unknown_hub_tag_lists_tags():
    with pytest.raises(ModelLoadError, match="laion2b_s34b_b79k") as caught:
        load_image_text_model(ModelSpec(arch="ViT-B-32", pretrained="no-such-tag"), device="cpu")
    assert "--pretrained" in str(caught.value)


def test_bad_files_are_reported_and_skipped(tmp_path, tiny, image_paths):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(image_paths[0].read_bytes()[:40])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    paths = [*image_paths[:5], broken, image_paths[5], tmp_path / "missing.jpg", text, image_paths[6]]
    positions, embeddings, errors = embed_all(tiny, paths, batch_size=4, num_workers=1)
    assert positions.tolist() == [0, 1, 2, 3, 4, 6, 9]
    assert [position for position, _ in errors] == [5, 7, 8]
    assert all(isinstance(reason, str) and reason for _, reason in errors)
    _, good, _ = embed_all(tiny, [p for i, p in enumerate(paths) if i in positions], num_workers=0)
    np.testing.assert_allclose(embeddings, good, atol=1e-6)


def test_a_batch_of_only_bad_files(tmp_path, tiny):
    batches = list(embed_images(tiny, [tmp_path / "a.jpg", tmp_path / "b.jpg"], progress=False))
    assert len(batches) == 1 and batches[0].embeddings.shape == (0, 64)
    assert len(batches[0].errors) == 2


def test_worker_count_does_not_change_embeddings(tiny, image_paths):
    positions0, serial, _ = embed_all(tiny, image_paths, batch_size=8, num_workers=0)
    positions2, parallel, _ = embed_all(tiny, image_paths, batch_size=8, num_workers=2)
    assert positions0.tolist() == positions2.tolist() == list(range(len(image_paths)))
    np.testing.assert_allclose(parallel, serial, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"num_workers": -1}, {"max_pixels": 0}])
def test_embed_arguments_are_checked_eagerly(tiny, kwargs):
    with pytest.raises(InvalidInput):
        embed_images(tiny, ["x.jpg"], **kwargs)


def test_device_selection():
    import torch

    with pytest.raises(InvalidInput, match="cpu"):
        select_device("tpu")
    assert select_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInput, match="not available"):
            select_device("cuda")
        if not torch.backends.mps.is_available():
            assert select_device(None) == "cpu"


def test_spec_validation():
    with pytest.raises(InvalidInput):
        ModelSpec(arch="")
    with pytest.raises(InvalidInput):
        ModelSpec(arch=TINY_NAME, seed=-1)


def test_light_modules_do_not_import_torch():
    code = (
        "import sys, core.models.base, core.models.tiny, core.models.clip, "
        "core.labeling.zeroshot; heavy = [m for m in ('torch', 'open_clip') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_a_picture_of_extreme_shape_is_embedded_from_its_centre_band(tiny, image_paths, tmp_path):
    """A 1 x 2,000,000-pixel PNG (a few KB, under the pixel cap) through the import pipeline and the
    region path: embedded like any picture, not a 224-wide resize of its whole length."""
    from PIL import Image

    line = tmp_path / "line.png"
    Image.new("RGB", (1, 2_000_000), (200, 30, 30)).save(line)
    assert line.stat().st_size < 100_000
    positions, embeddings, errors = embed_all(tiny, [line, image_paths[0]])
    assert list(positions) == [0, 1] and not errors and np.isfinite(embeddings).all()
    direct = tiny.encode_pictures([Image.open(line).convert("RGB")])
    np.testing.assert_allclose(direct[0], embeddings[0], atol=1e-5)
