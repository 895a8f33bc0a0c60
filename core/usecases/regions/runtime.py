"""The parts every region action shares: Segment Anything (loaded on first use), its on-disk
embedding cache and background precomputer, the image pixels, and the injected ports.

Speed: the image encoder is the slow part (seconds on CPU for vit_b); its output is cached on disk
per image content and model (core.segment.cache) and computed in the background for the image on
screen and the next ones, so a click only runs the prompt encoder and mask decoder."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image as Picture

from core import validation
from core.errors import ModelLoadError, NotFound
from core.io.images import open_rgb
from core.models.sam import ImageEmbedding, MaskPrediction, Segmenter, SegmenterSpec, load_segmenter
from core.segment.cache import EmbeddingCache, Precomputer
from core.segment.prompts import Prompts
from core.store.schema import Image
from core.usecases.context import Action, Context
from core.usecases.regions.ports import CropClassifier, Jobs, Thumbnails
from core.usecases.regions.results import ImageInfo

OVERLAY_SIDE = 640          # longer side of the mask PNGs sent to the browser
NAMING_SIDE = 1024          # CLIP names regions on the display copy (it sees 224 px anyway), not the original


class SamRuntime:
    """Segment Anything and what it needs, shared by the region actions of one process."""

    def __init__(self, context: Context, *, classifier: CropClassifier, thumbnails: Thumbnails, jobs: Jobs,
                 model_id_of: Callable[[int], str | None]) -> None:
        settings = context.settings
        self.context = context
        self.classifier, self.thumbnails, self.jobs, self.model_id_of = classifier, thumbnails, jobs, model_id_of
        self.spec = SegmenterSpec(name=settings.sam_model, checkpoint=settings.sam_checkpoint)
        self.cache = EmbeddingCache(settings.resolved_media_dir() / "sam-embeddings")
        self.precomputer = Precomputer(self.cache)
        self._segmenter: Segmenter | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()

    def segmenter(self) -> Segmenter:
        """Loaded on first use; a failure is remembered (and shown) instead of retried per click."""
        with self._lock:
            if self._segmenter is None:
                if self._problem is not None:
                    raise ModelLoadError(self._problem)
                try:
                    self._segmenter = load_segmenter(self.spec, device=self.context.settings.device)
                except ModelLoadError as exc:
                    self._problem = str(exc)
                    raise
            return self._segmenter

    def problem(self) -> str | None:
        """Why Segment Anything is not available (None when it loaded or was not tried yet)."""
        return self._problem

    def loaded(self) -> Segmenter | None:
        return self._segmenter

    # -- images --------------------------------------------------------------------------------

    def pixels(self, image: ImageInfo) -> np.ndarray:
        return np.asarray(open_rgb(image.file_path, max_pixels=self.context.settings.max_pixels))

    def display_pixels(self, image: ImageInfo) -> np.ndarray:
        """The image's display copy (made once, shared with the web view): decoding a 12-megapixel
        original on each click's label request took most of its ~0.8 s."""
        path = self.thumbnails.path(sha256=image.sha256, file_path=image.file_path, size=NAMING_SIDE)
        with Picture.open(path) as picture:
            return np.asarray(picture.convert("RGB"))

    def embedding(self, image: ImageInfo) -> ImageEmbedding:
        """The cached encoder output of this image (computed now, once, if missing)."""
        return self.cache.get_or_compute(self.segmenter(), image.sha256, lambda: self.pixels(image))

    def ready(self, image: ImageInfo) -> bool | None:
        """Is this image's embedding cached (a click will not wait)? None before the segmenter loaded."""
        segmenter = self._segmenter
        return None if segmenter is None else self.cache.contains(segmenter.model_id, image.sha256)

    def warm(self, images: Sequence[ImageInfo]) -> int:
        """Compute these embeddings in the background (in this order); 0 without a segmenter."""
        try:
            segmenter = self.segmenter()
        except ModelLoadError:
            return 0
        todo = [(i.sha256, _loader(self, i)) for i in images if not self.cache.contains(segmenter.model_id, i.sha256)]
        if todo:
            self.precomputer.submit(segmenter, todo)
        return len(todo)

    def predict(self, image: ImageInfo, prompts: Prompts, *, max_side: int | None = None) -> MaskPrediction:
        """SAM's masks for the prompts, at the image's size (or scaled to `max_side`, for display)."""
        points = np.array([p[:2] for p in prompts.points], dtype=np.float32) if prompts.points else None
        labels = np.array([p[2] for p in prompts.points], dtype=np.int64) if prompts.points else None
        box = np.array(prompts.box, dtype=np.float32) if prompts.box else None
        return self.segmenter().predict(self.embedding(image), points=points, labels=labels, box=box,
                                        multimask=True, max_side=max_side)

    def close(self) -> None:
        self.precomputer.stop()


def image_info(action: Action, image_id: object) -> ImageInfo:
    """A usable image of the action's project (NotFound otherwise)."""
    number = image_number(image_id)
    row = action.session.get(Image, number)
    usable = row is not None and row.project_id == action.project_id and row.status == "ok"
    if row is None or not usable or row.sha256 is None or row.file_path is None or not row.width or not row.height:
        name = action.project.name if action.project is not None else "?"
        raise NotFound(f"image: no usable image #{number} in project '{name}'")
    return ImageInfo(image_id=row.id, project_id=row.project_id, sha256=row.sha256, file_path=row.file_path,
                     path=row.original_path, width=row.width, height=row.height)


def image_number(image_id: object) -> int:
    """An image id (validation.record_id: an int or digits; 1.5, True, 'seven' are refused)."""
    return validation.record_id(image_id, field="image")


def _loader(runtime: SamRuntime, image: ImageInfo) -> Callable[[], np.ndarray]:
    return lambda: runtime.pixels(image)
