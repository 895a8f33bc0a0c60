"""The Segment Anything adapter with the tiny Sam: prompts, statelessness, the automatic generator,
and the loading paths (registry, local checkpoints, downloads, errors)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInput, ModelLoadError
from core.models import sam
from core.models.base import file_sha256
from core.models.sam import SEGMENTERS, ImageEmbedding, SegmenterSpec, load_segmenter
from core.models.sam_tiny import TINY_IMAGE_SIZE, save_tiny_sam_checkpoint

REPO = Path(__file__).resolve().parents[2]
CLICK = np.array([[30.0, 20.0]])


def picture(seed: int, shape: tuple[int, int] = (48, 80)) -> np.ndarray:
    """A non-square image with a bright disc on noise, so the encoder sees some structure."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (*shape, 3), dtype=np.uint8)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image[(yy - shape[0] // 2) ** 2 + (xx - shape[1] // 3) ** 2 < (shape[0] // 4) ** 2] = (230, 200, 40)
    return image


@pytest.fixture(scope="module")
def tiny():
    return load_segmenter(SegmenterSpec("tiny"), device="cpu")


@pytest.fixture(scope="module")
def embedding(tiny):
    return tiny.embed(picture(0))


def test_embed_resizes_the_longest_side(tiny, embedding):
    assert tiny.image_size == TINY_IMAGE_SIZE
    assert embedding.original_size == (48, 80)
    assert embedding.input_size == (38, 64)
    assert embedding.features.dtype == np.float16
    assert embedding.features.shape == (1, 16, 4, 4)


def test_click_gives_masks_of_the_image_size(tiny, embedding):
    many = tiny.predict(embedding, points=CLICK, labels=np.array([1]))
    assert many.masks.shape == (3, 48, 80) and many.masks.dtype == bool
    assert many.scores.shape == (3,) and many.scores.dtype == np.float32
    assert many.logits_lowres.shape == (3, 16, 16) and many.logits_lowres.dtype == np.float32
    one = tiny.predict(embedding, points=CLICK, labels=np.array([1]), multimask=False)
    assert one.masks.shape == (1, 48, 80) and one.scores.shape == (1,) and one.logits_lowres.shape == (1, 16, 16)


def test_display_size_masks_match_the_full_size_ones(tiny, embedding):
    """max_side: the click path's masks, made at display size, are the full-size masks scaled down."""
    click = {"points": np.array([[30.0, 20.0]]), "labels": np.array([1])}
    full = tiny.predict(embedding, **click).masks
    small = tiny.predict(embedding, max_side=32, **click).masks
    assert small.shape == (3, 19, 32)                      # 48x80 scaled by 0.4
    rows = np.minimum((np.arange(19) + 0.5) / 0.4, 47).astype(int)
    cols = np.minimum((np.arange(32) + 0.5) / 0.4, 79).astype(int)
    agree = (full[:, rows][:, :, cols] == small).mean()
    assert agree > 0.9, agree
    assert tiny.predict(embedding, max_side=500, **click).masks.shape == full.shape  # never scaled up


def test_negative_point_box_and_mask_input_change_the_logits(tiny, embedding):
    alone = tiny.predict(embedding, points=CLICK, labels=np.array([1])).logits_lowres
    negative = tiny.predict(embedding, points=np.array([[30.0, 20.0], [70.0, 40.0]]), labels=np.array([1, 0]))
    boxed = tiny.predict(embedding, points=CLICK, labels=np.array([1]), box=np.array([10, 5, 50, 40]))
    refined = tiny.predict(embedding, points=CLICK, labels=np.array([1]), mask_input=alone[:1])
    for other in (negative, boxed, refined):
        assert other.logits_lowres.shape == alone.shape
        assert np.abs(other.logits_lowres - alone).max() > 1e-4
    box_only = tiny.predict(embedding, box=np.array([10, 5, 50, 40]))
    assert box_only.masks.shape == (3, 48, 80)


def test_point_coordinates_are_in_original_pixels(tiny, embedding):
    left = tiny.predict(embedding, points=np.array([[5.0, 5.0]]), labels=np.array([1])).logits_lowres
    right = tiny.predict(embedding, points=np.array([[75.0, 40.0]]), labels=np.array([1])).logits_lowres
    assert np.abs(left - right).max() > 1e-4


def test_predict_is_stateless(tiny):
    first, second = tiny.embed(picture(1)), tiny.embed(picture(2, (64, 40)))
    alone = [tiny.predict(e, points=np.array([[20.0, 20.0]]), labels=np.array([1])) for e in (first, second)]
    mixed = [tiny.predict(e, points=np.array([[20.0, 20.0]]), labels=np.array([1])) for e in (second, first)][::-1]
    assert alone[1].masks.shape == (3, 64, 40)
    for a, b in zip(alone, mixed, strict=True):
        np.testing.assert_array_equal(a.logits_lowres, b.logits_lowres)
        np.testing.assert_array_equal(a.masks, b.masks)
    assert np.abs(alone[0].logits_lowres - alone[1].logits_lowres).max() > 1e-4


def test_predict_from_threads_matches_serial(tiny, embedding):
    clicks = [np.array([[float(x), 20.0]]) for x in range(5, 80, 10)]
    serial = [tiny.predict(embedding, points=c).logits_lowres for c in clicks]
    results: dict[int, np.ndarray] = {}

    def click(index: int) -> None:
        results[index] = tiny.predict(embedding, points=clicks[index]).logits_lowres

    threads = [threading.Thread(target=click, args=(i,)) for i in range(len(clicks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, expected in enumerate(serial):
        np.testing.assert_allclose(results[index], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "prompt"),
        ({"points": np.zeros((2, 3))}, "points"),
        ({"points": CLICK, "labels": np.array([2])}, "labels"),
        ({"points": CLICK, "labels": np.array([1, 1])}, "labels"),
        ({"box": np.array([1, 2, 3])}, "box"),
        ({"points": CLICK, "mask_input": np.zeros((1, 256, 256))}, "mask_input"),
    ],
)
def test_bad_prompts_are_invalid_input(tiny, embedding, options, field):
    with pytest.raises(InvalidInput, match=field):
        tiny.predict(embedding, **options)


def test_embedding_of_another_model_is_invalid_input(tiny):
    foreign = ImageEmbedding(
        features=np.zeros((1, 256, 64, 64), np.float16), original_size=(48, 80), input_size=(768, 1024)
    )
    with pytest.raises(InvalidInput, match="embedding"):
        tiny.predict(foreign, points=CLICK)


def test_embed_rejects_non_rgb_uint8(tiny):
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8)):
        with pytest.raises(InvalidInput, match="image"):
            tiny.embed(bad)


def test_generate_with_cached_embedding_runs_no_encoder():
    segmenter = load_segmenter(SegmenterSpec("tiny"), device="cpu")
    image = picture(3)
    embedding = segmenter.embed(image)
    records = segmenter.generate(
        image, embedding=embedding, points_per_side=8, pred_iou_thresh=0, stability_score_thresh=0
    )
    assert segmenter.encoder_runs == 1
    assert 1 <= len(records) <= 100
    assert set(records[0]) == {"segmentation", "area", "bbox", "predicted_iou", "stability_score"}
    for record in records:
        assert record["segmentation"].shape == (48, 80) and record["segmentation"].dtype == bool
        assert record["area"] == int(record["segmentation"].sum()) and len(record["bbox"]) == 4
    ious = [record["predicted_iou"] for record in records]
    assert ious == sorted(ious, reverse=True)
    assert (
        len(segmenter.generate(image, points_per_side=8, pred_iou_thresh=0, stability_score_thresh=0, max_masks=1)) == 1
    )
    assert segmenter.encoder_runs == 2  # no embedding given: it encodes
    with pytest.raises(InvalidInput, match="embedding"):
        segmenter.generate(picture(3, (40, 40)), embedding=embedding)


def test_registry_and_unknown_name():
    assert set(SEGMENTERS) == {"vit_b", "vit_l", "vit_h", "vit_t", "tiny"}
    with pytest.raises(InvalidInput, match=r"vit_b.*vit_t.*tiny"):
        SegmenterSpec("vit_x")


def test_model_id_formats(tmp_path):
    path = save_tiny_sam_checkpoint(tmp_path / "tiny.pth", seed=1)
    assert SegmenterSpec("tiny").model_id == "tiny@random:0"
    assert SegmenterSpec("vit_b", checkpoint="random", seed=3).model_id == "vit_b@random:3"
    assert SegmenterSpec("vit_b").model_id == "vit_b@sam_vit_b_01ec64"
    assert SegmenterSpec("vit_h").model_id == "vit_h@sam_vit_h_4b8939"
    assert SegmenterSpec("tiny", checkpoint=str(path)).model_id == f"tiny@file:{file_sha256(path)[:16]}"


def test_missing_checkpoint_names_the_path_and_the_url(tmp_path):
    missing = str(tmp_path / "nowhere" / "sam_vit_b.pth")
    with pytest.raises(ModelLoadError) as caught:
        load_segmenter(SegmenterSpec("vit_b", checkpoint=missing), device="cpu")
    message = str(caught.value)
    assert missing in message and sam.SAM_URLS["vit_b"] in message
    assert "--sam-checkpoint" in message and "CLIPMARK_SAM_CHECKPOINT" in message


def test_vit_t_needs_a_local_checkpoint():
    with pytest.raises(ModelLoadError, match=r"MobileSAM.*mobile_sam\.pt|mobile_sam\.pt.*MobileSAM"):
        load_segmenter(SegmenterSpec("vit_t"), device="cpu")


def test_offline_download_fails_fast_with_instructions(tmp_path, monkeypatch):
    url = "http://127.0.0.1:9/sam_vit_b_01ec64.pth"  # the discard port: connection refused at once
    monkeypatch.setitem(sam.SAM_URLS, "vit_b", url)
    with pytest.raises(ModelLoadError) as caught:
        load_segmenter(SegmenterSpec("vit_b"), device="cpu", cache_dir=tmp_path)
    assert url in str(caught.value) and "--sam-checkpoint" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_cached_download_is_used_without_network(tmp_path):
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"sam_vit_b_01ec64\.pth"):
        load_segmenter(SegmenterSpec("vit_b"), device="cpu", cache_dir=tmp_path)


def test_tiny_checkpoint_round_trip(tmp_path, tiny):
    path = save_tiny_sam_checkpoint(tmp_path / "tiny.pth", seed=0)
    loaded = load_segmenter(SegmenterSpec("tiny", checkpoint=str(path)), device="cpu")
    image = picture(4)
    first, second = tiny.embed(image), loaded.embed(image)
    np.testing.assert_array_equal(first.features, second.features)
    a, b = tiny.predict(first, points=CLICK), loaded.predict(second, points=CLICK)
    np.testing.assert_array_equal(a.logits_lowres, b.logits_lowres)
    other = load_segmenter(SegmenterSpec("tiny", seed=1), device="cpu").embed(image)
    assert not np.array_equal(other.features, first.features)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = save_tiny_sam_checkpoint(tmp_path / "tiny.pth")
    with pytest.raises(ModelLoadError, match=rf"{path}.*vit_t|vit_t.*{path}"):
        load_segmenter(SegmenterSpec("vit_t", checkpoint=str(path)), device="cpu")


def test_seeding_leaves_the_global_rng_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_segmenter(SegmenterSpec("tiny", seed=5), device="cpu")
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


@pytest.fixture(scope="module")
def vit_t():
    return load_segmenter(SegmenterSpec("vit_t", checkpoint="random"), device="cpu")


def test_vit_t_builds_with_random_weights(vit_t):
    assert vit_t.image_size == 1024 and vit_t.model_id == "vit_t@random:0"
    assert type(vit_t.module).__module__.startswith("mobile_sam")
    rng = np.random.default_rng(0)
    features = rng.standard_normal((1, 256, 64, 64)).astype(np.float16)
    embedding = ImageEmbedding(features=features, original_size=(60, 90), input_size=(683, 1024))
    prediction = vit_t.predict(embedding, points=np.array([[40.0, 30.0]]))
    assert prediction.masks.shape == (3, 60, 90) and prediction.logits_lowres.shape == (3, 256, 256)
    image = picture(5, (60, 90))
    records = vit_t.generate(image, embedding=embedding, points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0)
    assert records and all(r["segmentation"].shape == (60, 90) for r in records)
    assert vit_t.encoder_runs == 0


@pytest.mark.slow
def test_vit_t_encodes_a_real_size_image(vit_t):
    embedding = vit_t.embed(picture(5, (60, 90)))
    assert embedding.features.shape == (1, 256, 64, 64) and embedding.input_size == (683, 1024)
    assert vit_t.encoder_runs == 1


def test_importing_the_adapter_does_not_import_torch():
    code = "import sys, core.models.sam, core.segment.cache; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
