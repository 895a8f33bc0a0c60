"""Segment Anything behind the `Segmenter` protocol: SAM ViT-B/L/H, MobileSAM (vit_t) and clipmark's
tiny random-weight Sam. torch, segment_anything and mobile_sam are imported inside functions only.

The click path is stateless: `embed` runs the image encoder once per image (cache the result, see
core.segment.cache) and `predict` runs only the prompt encoder and mask decoder on an `ImageEmbedding`,
so one loaded model serves every browser tab without a per-image `SamPredictor`.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import InvalidInput, ModelLoadError
from core.models.base import file_sha256
from core.models.clip import select_device
from core.models.sam_tiny import TINY_NAME, seeded
from core.models.sam_weights import (  # noqa: F401  (re-exported: the registry is part of this module's API)
    DEFAULT_CACHE_DIR,
    DOWNLOAD_TIMEOUT_S,
    MOBILE_SAM_REPO,
    SAM_URLS,
    SEGMENTERS,
    download_checkpoint,
    existing_file,
    import_library,
    sam_checkpoint_help,
)

if TYPE_CHECKING:
    import torch

RANDOM = "random"
GENERATED_KEYS = ("segmentation", "area", "bbox", "predicted_iou", "stability_score")


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """The image encoder's output for one image: what every click on that image needs."""

    features: np.ndarray  # (1, C, h, w) float16
    original_size: tuple[int, int]  # (H, W) of the image as given
    input_size: tuple[int, int]  # (h, w) after ResizeLongestSide, before padding


@dataclass(frozen=True, eq=False)
class MaskPrediction:
    """Masks for one prompt, in SAM's order (not sorted by score)."""

    masks: np.ndarray  # (M, H, W) bool, M = 3 with multimask else 1
    scores: np.ndarray  # (M,) float32 predicted IoU
    logits_lowres: np.ndarray  # (M, 256, 256) float32 for SAM (16x16 for tiny); feed back as mask_input


class Segmenter(Protocol):
    """A promptable segmenter: encode an image once, then turn clicks/boxes into masks cheaply."""

    model_id: str
    name: str
    device: str
    image_size: int
    encoder_runs: int
    module: Any

    def embed(self, image: np.ndarray) -> ImageEmbedding: ...

    def predict(
        self,
        embedding: ImageEmbedding,
        *,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        max_side: int | None = None,
    ) -> MaskPrediction: ...

    def generate(self, image: np.ndarray, *, embedding: ImageEmbedding | None = None, points_per_side: int = 16,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.85, min_mask_region_area: int = 0,
                 max_masks: int = 100) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class SegmenterSpec:
    """A segmenter name plus where its weights come from: a file, 'random', or None (official download)."""

    name: str = "vit_b"
    checkpoint: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in SEGMENTERS:
            raise InvalidInput(f"sam-model: unknown segmenter {self.name!r}; valid: {', '.join(SEGMENTERS)}")
        if self.checkpoint is not None and (not isinstance(self.checkpoint, str) or not self.checkpoint.strip()):
            raise InvalidInput("sam-checkpoint: must be a checkpoint path, 'random', or None (official download)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InvalidInput(f"seed: must be a non-negative integer, got {self.seed!r}")

    @property
    def source(self) -> str:
        """'random', 'file' or 'download' (vit_b/l/h only; ModelLoadError for the others)."""
        if self.checkpoint == RANDOM or (self.checkpoint is None and self.name == TINY_NAME):
            return "random"
        if self.checkpoint is not None:
            return "file"
        if self.name not in SAM_URLS:
            raise ModelLoadError(
                f"sam-checkpoint: {self.name} has no official download; give a local checkpoint. "
                + sam_checkpoint_help(self.name)
            )
        return "download"

    @cached_property
    def model_id(self) -> str:
        """Stable cache key: 'vit_b@sam_vit_b_01ec64', 'vit_b@file:<sha16>', 'tiny@random:0'."""
        source = self.source
        if source == "random":
            return f"{self.name}@random:{self.seed}"
        if source == "download":
            return f"{self.name}@{SAM_URLS[self.name].rsplit('/', 1)[-1].removesuffix('.pth')}"
        return f"{self.name}@file:{file_sha256(existing_file(str(self.checkpoint), self.name))[:16]}"


def load_segmenter(
    spec: SegmenterSpec, *, device: str | None = None, cache_dir: str | Path | None = None
) -> SamSegmenter:
    """Build the segmenter `spec` names on `device` (default: CUDA, then MPS, then CPU)."""
    chosen = select_device(device)
    model_id = spec.model_id  # fails fast on a missing file or a vit_t without checkpoint
    source = spec.source
    path = None
    if source == "file":
        path = existing_file(str(spec.checkpoint), spec.name)
    elif source == "download":
        path = download_checkpoint(spec.name, cache_dir=cache_dir)
    with seeded(spec.seed):
        module = SEGMENTERS[spec.name](path)
    return SamSegmenter(module.to(chosen), model_id=model_id, name=spec.name, device=chosen)


class SamSegmenter:
    """A Sam module behind the `Segmenter` protocol. Thread-safe: it keeps no per-image state."""

    def __init__(self, module: Any, *, model_id: str, name: str, device: str) -> None:
        self.module = module.eval()
        self.model_id = model_id
        self.name = name
        self.device = device
        self.image_size = int(module.image_encoder.img_size)
        self.encoder_runs = 0
        self._runs_lock = threading.Lock()
        self._dense_pe: torch.Tensor | None = None  # a model constant, made on the first click

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """Run the image encoder on an HxWx3 uint8 RGB image."""
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        pixels = _check_image(image)
        resized = ResizeLongestSide(self.image_size).apply_image(pixels)
        batch = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with torch.inference_mode():
            features = self.module.image_encoder(self.module.preprocess(batch))
        with self._runs_lock:
            self.encoder_runs += 1
        return ImageEmbedding(
            features=features.to(torch.float16).cpu().numpy(),
            original_size=(int(pixels.shape[0]), int(pixels.shape[1])),
            input_size=(int(resized.shape[0]), int(resized.shape[1])),
        )

    def predict(
        self,
        embedding: ImageEmbedding,
        *,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        max_side: int | None = None,
    ) -> MaskPrediction:
        """Masks for point (original-pixel xy; labels 1 positive, 0 negative) and/or box (xyxy) prompts.
        `max_side`: the masks come out scaled so that their longer side is at most this (SAM's upsampling
        ends at that size instead of the full image: what a display needs, at a fraction of the cost)."""
        import torch

        prompts = self._prompts(embedding, points, labels, box, mask_input)
        sam = self.module
        with torch.inference_mode():
            sparse, dense = sam.prompt_encoder(**prompts)
            low_res, scores = sam.mask_decoder(
                image_embeddings=_features(embedding, self.device),
                image_pe=self._image_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=bool(multimask),
            )
            size = output_size(embedding.original_size, max_side)
            masks = sam.postprocess_masks(low_res, embedding.input_size, size) > sam.mask_threshold
        return MaskPrediction(
            masks=masks[0].cpu().numpy(),
            scores=scores[0].float().cpu().numpy(),
            logits_lowres=low_res[0].float().cpu().numpy(),
        )

    def _image_pe(self) -> torch.Tensor:
        """The positional encoding of the embedding grid (the same for every click; a race makes it twice)."""
        if self._dense_pe is None:
            self._dense_pe = self.module.prompt_encoder.get_dense_pe()
        return self._dense_pe

    def _prompts(
        self,
        embedding: ImageEmbedding,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
    ) -> dict[str, Any]:
        """Validated prompts as the prompt encoder's tensors, in the resized-input frame."""
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        if points is None and box is None:
            raise InvalidInput("prompt: give at least one point or a box")
        encoder = self.module.prompt_encoder
        expected = (1, encoder.embed_dim, *encoder.image_embedding_size)
        if tuple(embedding.features.shape) != expected:
            raise InvalidInput(
                f"embedding: features {embedding.features.shape} are not from {self.model_id} {expected}"
            )
        transform = ResizeLongestSide(self.image_size)
        size = embedding.original_size
        prompts: dict[str, Any] = {"points": None, "boxes": None, "masks": None}
        if points is not None:
            xy, classes = _check_points(points, labels)
            coords = torch.as_tensor(transform.apply_coords(xy, size), dtype=torch.float, device=self.device)
            prompts["points"] = (coords[None], torch.as_tensor(classes, dtype=torch.int, device=self.device)[None])
        if box is not None:
            xyxy = _check_array("box", box, (4,))
            prompts["boxes"] = torch.as_tensor(transform.apply_boxes(xyxy, size), dtype=torch.float, device=self.device)
        if mask_input is not None:
            side = tuple(encoder.mask_input_size)
            logits = _check_array("mask_input", mask_input, (1, *side))
            prompts["masks"] = torch.as_tensor(logits, dtype=torch.float, device=self.device)[None]
        return prompts

    def generate(
        self,
        image: np.ndarray,
        *,
        embedding: ImageEmbedding | None = None,
        points_per_side: int = 16,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.85,
        min_mask_region_area: int = 0,
        max_masks: int = 100,
    ) -> list[dict[str, Any]]:
        """Automatic masks over a point grid (no crops); reuses `embedding` instead of re-encoding."""
        import torch

        pixels = _check_image(image)
        for field, value in (("points_per_side", points_per_side), ("max_masks", max_masks)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput(f"{field}: must be an integer >= 1, got {value!r}")
        if min_mask_region_area > 0 and importlib.util.find_spec("cv2") is None:
            raise InvalidInput("min_mask_region_area: > 0 needs OpenCV (pip install opencv-python-headless); use 0")
        if embedding is None:
            embedding = self.embed(pixels)
        elif tuple(embedding.original_size) != pixels.shape[:2]:
            raise InvalidInput(f"embedding: made for an image of {embedding.original_size}, not {pixels.shape[:2]}")
        generator = _mask_generator(
            self.module,
            embedding,
            points_per_side=points_per_side,
            pred_iou_thresh=float(pred_iou_thresh),
            stability_score_thresh=float(stability_score_thresh),
            min_mask_region_area=int(min_mask_region_area),
        )
        with torch.inference_mode():
            records = generator.generate(pixels)
        records.sort(key=lambda record: record["predicted_iou"], reverse=True)
        return [{key: record[key] for key in GENERATED_KEYS} for record in records[:max_masks]]


def output_size(original: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """`original` (H, W), scaled down so that its longer side is at most `max_side` (never up)."""
    if max_side is None or max(original) <= max_side:
        return original
    if max_side < 1:
        raise InvalidInput(f"max_side: must be at least 1, got {max_side}")
    scale = max_side / max(original)
    return max(1, round(original[0] * scale)), max(1, round(original[1] * scale))


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInput("image: must be an HxWx3 uint8 RGB array")
    if min(image.shape[:2]) < 1:
        raise InvalidInput(f"image: empty ({image.shape[0]}x{image.shape[1]})")
    return np.ascontiguousarray(image)


def _check_array(field: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape or not np.isfinite(array).all():
        raise InvalidInput(f"{field}: must be {shape} finite numbers, got shape {array.shape}")
    return array


def _check_points(points: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(points, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0 or not np.isfinite(xy).all():
        raise InvalidInput(f"points: must be (N, 2) finite x, y pixels, got shape {xy.shape}")
    classes = np.ones(len(xy), dtype=np.int64) if labels is None else np.asarray(labels)
    if classes.shape != (len(xy),) or not np.isin(classes, (0, 1)).all():
        raise InvalidInput(f"labels: must be {len(xy)} values of 1 (positive) or 0 (negative)")
    return xy, classes.astype(np.int64)


def _features(embedding: ImageEmbedding, device: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(embedding.features).to(device=device, dtype=torch.float32)


def _mask_generator(module: Any, embedding: ImageEmbedding, **options: Any) -> Any:
    """The package's SamAutomaticMaskGenerator, with a predictor that installs `embedding`."""
    library = import_library("mobile_sam" if type(module).__module__.startswith("mobile_sam") else "segment_anything")

    class EmbeddedPredictor(library.SamPredictor):  # type: ignore[name-defined,misc]
        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            self.reset_image()
            self.features = _features(embedding, str(self.device))
            self.original_size = tuple(embedding.original_size)
            self.input_size = tuple(embedding.input_size)
            self.is_image_set = True

    generator = library.SamAutomaticMaskGenerator(module, crop_n_layers=0, output_mode="binary_mask", **options)
    generator.predictor = EmbeddedPredictor(module)
    return generator
