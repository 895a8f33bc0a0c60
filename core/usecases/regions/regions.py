"""Regions with Segment Anything: a click (or box) becomes a mask, CLIP names what the mask holds,
and an accepted mask is saved as an instance. One `Regions` per Service (`service.regions`).

Speed: the image encoder is the slow part (seconds on CPU for vit_b); its output is cached on disk
per image content and model (core.segment.cache) and computed in the background for the image on
screen and the next ones of the queue, so a click only runs the prompt encoder and mask decoder.
Clicks are stateless: the browser sends its prompts (a few numbers) and gets back small PNGs."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import Conflict, InvalidInput, ModelLoadError, NotFound
from core.models.sam import ImageEmbedding, MaskPrediction, SegmenterSpec
from core.segment.prompts import Prompts
from core.store import regions as store
from core.store import repo
from core.store.schema import Image, Instance, LabelClass

if TYPE_CHECKING:
    from core.models.sam import SamSegmenter
    from core.segment.cache import EmbeddingCache, Precomputer
    from core.service import Service

OVERLAY_SIDE = 640          # longer side of the mask PNGs sent to the browser
OVERLAY_CACHE = 64          # images whose instance overlay is remembered
NAMING_SIDE = 1024          # CLIP names regions on the display copy (it sees 224 px anyway), not the original


class Regions:
    """Segmentation use cases of one Service: the segmenter, its embedding cache, instances."""

    def __init__(self, service: Service) -> None:
        from core.segment.cache import EmbeddingCache, Precomputer

        self.service = service
        settings = service.settings
        self.spec = SegmenterSpec(name=settings.sam_model, checkpoint=settings.sam_checkpoint)
        root = settings.resolved_media_dir() / "sam-embeddings"
        self.cache: EmbeddingCache = EmbeddingCache(root)
        self.precomputer: Precomputer = Precomputer(self.cache)
        self._segmenter: SamSegmenter | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()
        self._overlays: OrderedDict[tuple[int, tuple[int, ...]], bytes | None] = OrderedDict()
        self._overlay_lock = threading.Lock()

    def close(self) -> None:
        self.precomputer.stop()

    # -- the model -----------------------------------------------------------------------------

    def segmenter(self) -> SamSegmenter:
        """Loaded on first use; a failure is remembered (and shown) instead of retried per click."""
        from core.models.sam import load_segmenter

        with self._lock:
            if self._segmenter is None:
                if self._problem is not None:
                    raise ModelLoadError(self._problem)
                try:
                    self._segmenter = load_segmenter(self.spec, device=self.service.settings.device)
                except ModelLoadError as exc:
                    self._problem = str(exc)
                    raise
            return self._segmenter

    def problem(self) -> str | None:
        """Why Segment Anything is not available (None when it loaded or was not tried yet)."""
        return self._problem

    # -- images and their embeddings -----------------------------------------------------------

    def image(self, project: str, image_id: int) -> dict[str, Any]:
        image_id = _image_number(image_id)
        with self.service.sessions.begin() as session:
            project_id = self.service.project(session, project).id
            row = session.get(Image, image_id)
            if row is None or row.project_id != project_id or row.status != "ok":
                raise NotFound(f"image: no usable image #{image_id} in project '{project}'")
            return {"image_id": row.id, "project_id": project_id, "sha256": row.sha256, "file_path": row.file_path,
                    "path": row.original_path, "width": row.width, "height": row.height}

    def pixels(self, image: dict[str, Any]) -> np.ndarray:
        from core.io.images import open_rgb

        return np.asarray(open_rgb(image["file_path"], max_pixels=self.service.settings.max_pixels))

    def embedding(self, image: dict[str, Any]) -> ImageEmbedding:
        """The cached encoder output of this image (computed now, once, if missing)."""
        return self.cache.get_or_compute(self.segmenter(), image["sha256"], lambda: self.pixels(image))

    def instances_overlay(self, image_id: int, instances: Sequence[dict[str, Any]]) -> bytes | None:
        """All instances of an image drawn into one PNG (core.segment.view.instances_png). It is shown
        with every click, so it is remembered per image and set of live instances (masks never change;
        a new, deleted or restored instance makes a new key): 100 instances cost ~150 ms to draw."""
        from core.segment.view import instances_png

        key = (int(image_id), tuple(int(i["id"]) for i in instances))
        with self._overlay_lock:
            if key in self._overlays:
                self._overlays.move_to_end(key)
                return self._overlays[key]
        png = instances_png([i["rle"] for i in instances], max_side=OVERLAY_SIDE)
        with self._overlay_lock:
            self._overlays[key] = png
            while len(self._overlays) > OVERLAY_CACHE:
                self._overlays.popitem(last=False)
        return png

    def ready(self, image: dict[str, Any]) -> bool | None:
        """Is this image's embedding cached (a click will not wait)? None before the segmenter loaded."""
        segmenter = self._segmenter
        return None if segmenter is None else self.cache.contains(segmenter.model_id, image["sha256"])

    def warm(self, project: str, image_ids: Sequence[int]) -> int:
        """Compute the embeddings of these images in the background (the one on screen first).
        Returns how many were handed to the worker; 0 when the segmenter is not available."""
        try:
            segmenter = self.segmenter()
        except ModelLoadError:
            return 0
        images = [self.image(project, i) for i in image_ids]
        todo = [(i["sha256"], _loader(self, i)) for i in images
                if not self.cache.contains(segmenter.model_id, i["sha256"])]
        if todo:
            self.precomputer.submit(segmenter, todo)
        return len(todo)

    # -- click to mask -------------------------------------------------------------------------

    def predict(self, project: str, image_id: int, prompts: dict[str, Any] | Prompts, *,
                max_side: int | None = None) -> tuple[dict[str, Any], Prompts, MaskPrediction]:
        """SAM's masks for the prompts, at the image's size (or scaled to `max_side`, for display)."""
        image = self.image(project, image_id)
        if not isinstance(prompts, Prompts):
            prompts = Prompts.parse(prompts, width=image["width"], height=image["height"])
        embedding = self.embedding(image)
        points = np.array([p[:2] for p in prompts.points], dtype=np.float32) if prompts.points else None
        labels = np.array([p[2] for p in prompts.points], dtype=np.int64) if prompts.points else None
        box = np.array(prompts.box, dtype=np.float32) if prompts.box else None
        result = self.segmenter().predict(embedding, points=points, labels=labels, box=box, multimask=True,
                                          max_side=max_side)
        return image, prompts, result

    def segment(self, project: str, image_id: int, prompts: dict[str, Any] | Prompts) -> dict[str, Any]:
        """The candidate masks for these prompts, made at display size (OVERLAY_SIDE; the saved mask is
        made at full size when accepted): score, area and box (in image pixels, from the display-size
        mask) and a small overlay PNG each; the best first choice (SAM's highest predicted IoU among
        non-empty masks)."""
        from core.segment.masks import mask_bbox, overlay_png

        start = time.perf_counter()
        image, prompts, result = self.predict(project, image_id, prompts, max_side=OVERLAY_SIDE)
        scale = image["width"] / result.masks.shape[2]
        masks = [{"index": k, "score": float(result.scores[k]), "area": int(round(mask.sum() * scale * scale)),
                  "bbox": [round(v * scale, 1) for v in mask_bbox(mask)] if mask.any() else [0.0, 0.0, 0.0, 0.0],
                  "png": overlay_png(mask, max_side=OVERLAY_SIDE)} for k, mask in enumerate(result.masks)]
        return {"image_id": image["image_id"], "width": image["width"], "height": image["height"],
                "masks": masks, "best": best_choice(result), "prompts": prompts.as_json(),
                "ms": round(1000 * (time.perf_counter() - start), 1)}

    def mask(self, project: str, image_id: int, prompts: dict[str, Any] | Prompts, choice: int | None, *,
             max_side: int | None = None) -> tuple[dict[str, Any], Prompts, np.ndarray, float]:
        """The chosen mask (recomputed from the prompts: nothing is kept between clicks), at the image's
        size or scaled to `max_side`."""
        image, prompts, result = self.predict(project, image_id, prompts, max_side=max_side)
        index = best_choice(result) if choice is None else int(choice)
        if not 0 <= index < len(result.masks):
            count = len(result.masks)
            raise InvalidInput(f"choice: {choice} is not one of the {count} masks (0-{count - 1})")
        mask = result.masks[index]
        if not mask.any():
            raise InvalidInput("mask: this mask is empty; click inside the object or pick another mask")
        return image, prompts, mask, float(result.scores[index])

    def propose_label(self, project: str, image: dict[str, Any], masks: Sequence[np.ndarray], *, k: int | None = 3
                      ) -> list[list[dict[str, Any]]]:
        """CLIP's top-k classes (None: all) for each mask (its masked crop of the display copy against
        the project's text head); empty lists when the project has no CLIP model or text head."""
        from core.segment.masks import resize_mask
        from core.segment.naming import name_regions

        pixels = self.display_pixels(image)
        return name_regions(self.service, project, pixels, [resize_mask(m, pixels.shape[:2]) for m in masks], k=k)

    def display_pixels(self, image: dict[str, Any]) -> np.ndarray:
        """The image's display copy (made once, shared with the web view): decoding a 12-megapixel
        original on each click's label request took most of its ~0.8 s."""
        from PIL import Image as Picture

        with Picture.open(self.service.thumbnail(image, size=NAMING_SIDE)) as picture:
            return np.asarray(picture.convert("RGB"))

    def candidate_labels(self, project: str, image_id: int, prompts: dict[str, Any], choice: int | None,
                         *, k: int = 3) -> list[dict[str, Any]]:
        image, _, mask, _ = self.mask(project, image_id, prompts, choice, max_side=NAMING_SIDE)
        return self.propose_label(project, image, [mask], k=k)[0]

    # -- instances -----------------------------------------------------------------------------

    def add_instance(self, project: str, image_id: int, prompts: dict[str, Any], *, choice: int | None = None,
                     label: str | None = None, annotator: str | None = None) -> dict[str, Any]:
        """Save the chosen mask as an instance with `label`, or CLIP's best class when none is given."""
        from core.segment.masks import mask_bbox, rle_encode

        image, parsed, mask, score = self.mask(project, image_id, prompts, choice)
        top = self.propose_label(project, image, [mask], k=None)[0]  # every class: the given one's confidence
        label, confidence = _chosen_label(label, top)
        with self.service.sessions.begin() as session:
            user = self.service.actor(session, annotator, "label")
            label_id = _class_id(session, image["project_id"], label)
            row = store.add_instance(
                session, project_id=image["project_id"], image_id=image["image_id"], label_id=label_id,
                rle=rle_encode(mask), bbox=mask_bbox(mask), area=int(mask.sum()), score=score,
                label_confidence=confidence, source="click", prompts=parsed.as_json(),
                segmenter_id=self.segmenter().model_id, annotator_id=user.id)
            store.add_event(session, project_id=image["project_id"], image_id=image["image_id"], instance_id=row.id,
                            annotator_id=user.id, action="add", label_after_id=label_id)
            return instance_dict(row, label)

    def instances(self, project: str, image_id: int) -> list[dict[str, Any]]:
        image = self.image(project, image_id)
        with self.service.sessions.begin() as session:
            names = _class_names(session, image["project_id"])
            return [instance_dict(row, names.get(row.label_id))
                    for row in store.instances_of_image(session, image_id=image["image_id"])]

    def delete_instance(self, project: str, instance_id: int, *, annotator: str | None = None) -> dict[str, Any]:
        with self.service.sessions.begin() as session:
            row, user_id, names = self._instance(session, project, instance_id, annotator)
            row.deleted, row.updated_at = True, _now()
            store.add_event(session, project_id=row.project_id, image_id=row.image_id, instance_id=row.id,
                            annotator_id=user_id, action="delete", label_before_id=row.label_id)
            return instance_dict(row, names.get(row.label_id))

    def relabel_instance(self, project: str, instance_id: int, label: str, *,
                         annotator: str | None = None) -> dict[str, Any]:
        with self.service.sessions.begin() as session:
            row, user_id, names = self._instance(session, project, instance_id, annotator)
            before, row.label_id = row.label_id, _class_id(session, row.project_id, label)
            row.updated_at, row.annotator_id = _now(), user_id
            store.add_event(session, project_id=row.project_id, image_id=row.image_id, instance_id=row.id,
                            annotator_id=user_id, action="relabel", label_before_id=before,
                            label_after_id=row.label_id)
            return instance_dict(row, label)

    def _instance(self, session: Any, project: str, instance_id: int, annotator: str | None
                  ) -> tuple[Instance, int, dict[int, str]]:
        project_id = self.service.project(session, project).id
        user_id = self.service.actor(session, annotator, "label").id
        row = store.instance(session, project_id=project_id, instance_id=int(instance_id))
        if row is None or row.deleted:
            raise NotFound(f"instance: no instance #{instance_id} in project '{project}'")
        return row, user_id, _class_names(session, project_id)

    def undo(self, project: str, *, annotator: str | None = None) -> dict[str, Any]:
        """Undo this user's latest region action (add, delete, relabel, accept or reject a proposal)."""
        from core.segment.undo import undo_region_event

        with self.service.sessions.begin() as session:
            project_id = self.service.project(session, project).id
            user_id = self.service.actor(session, annotator, "label").id
            event = store.latest_undoable(session, project_id=project_id, annotator_id=user_id)
            if event is None:
                raise Conflict("undo: you have no region action left to undo in this project")
            return undo_region_event(session, event, user_id=user_id)


def best_choice(result: MaskPrediction) -> int:
    """The mask SAM rates highest, preferring a non-empty one."""
    order = np.argsort(-np.asarray(result.scores))
    return next((int(k) for k in order if result.masks[k].any()), int(order[0]))


def instance_dict(row: Instance, label: str | None) -> dict[str, Any]:
    return {"id": row.id, "image_id": row.image_id, "label": label, "bbox": [round(v, 1) for v in row.bbox],
            "area": row.area, "score": row.score, "label_confidence": row.label_confidence,
            "source": row.source, "deleted": row.deleted}


def _chosen_label(label: str | None, top: list[dict[str, Any]]) -> tuple[str, float | None]:
    if label:
        match = next((t for t in top if t["label"] == label), None)
        return label, None if match is None else match["confidence"]
    if not top:
        raise InvalidInput("label: CLIP has no proposal for this project (no model or text head yet); pick a class")
    return top[0]["label"], top[0]["confidence"]


def _class_id(session: Any, project_id: int, label: str) -> int:
    classes = repo.classes_of(session, project_id=project_id)
    found = next((c.id for c in classes if c.name == label), None)
    if found is None:
        raise InvalidInput(f"label: unknown class '{label}' (classes: {', '.join(c.name for c in classes)})")
    return found


def _class_names(session: Any, project_id: int) -> dict[int, str]:
    from sqlalchemy import select

    query = select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == project_id)
    return {int(i): name for i, name in session.execute(query)}


def _image_number(image_id: Any) -> int:
    try:
        return int(image_id)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"image: {image_id!r} is not an image id") from exc


def _loader(regions: Regions, image: dict[str, Any]) -> Any:
    return lambda: regions.pixels(image)


def _now() -> Any:
    from core.store.schema import utcnow

    return utcnow()
