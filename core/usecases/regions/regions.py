"""Regions with Segment Anything: a click (or box) becomes a mask, CLIP names what the mask holds,
and an accepted mask is saved as an instance; region proposals wait in a queue. One `Regions` per
process, built from injected parts (core.usecases.regions.ports), never from the service facade.

Each public method is one user action: the project, the acting annotator and their permission are
resolved once, in one transaction (core.usecases.context). Actions that run SAM or CLIP read in a
deferred transaction and write in a short one afterwards, so the SQLite write lock is never held
while a model runs. Clicks are stateless: the caller sends its prompts and gets back small PNGs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from tqdm import tqdm

from core import validation
from core.errors import ImageError, InvalidInput
from core.models.sam import MaskPrediction, Segmenter
from core.segment.cache import EmbeddingCache, Precomputer
from core.segment.masks import mask_bbox, overlay_png, resize_mask, rle_encode
from core.segment.prompts import Prompts
from core.store import regions as store
from core.store import repo
from core.usecases.context import Action, Context
from core.usecases.regions import instances, proposals
from core.usecases.regions.naming import chosen_label, class_id, region_probs, top_k
from core.usecases.regions.overlays import OverlayMemo
from core.usecases.regions.ports import CropClassifier, Jobs, SubmittedJob, Thumbnails
from core.usecases.regions.prepare import embed_all
from core.usecases.regions.results import (
    CandidateMask,
    EmbedReport,
    ImageInfo,
    ImageRegions,
    InstanceInfo,
    LabelScore,
    ProposalDecision,
    ProposalInfo,
    ProposeSummary,
    RleMask,
    RleSegmentation,
    Segmentation,
    UndoResult,
)
from core.usecases.regions.runtime import NAMING_SIDE, OVERLAY_SIDE, SamRuntime, image_info, image_number
from core.usecases.regions.undo import undo_latest

DISPLAY_SIDE = NAMING_SIDE  # the view shows the same display copy CLIP names regions on
MAX_PROPOSALS = 500         # proposals in one next_proposals answer
MAX_IMAGES = 100_000        # images named in one propose or embed_all call
Progress = Callable[[int, int], None]


class Regions:
    """The region use cases: segment, instances, undo, proposals, embeddings ahead of time."""

    def __init__(self, context: Context, *, classifier: CropClassifier, thumbnails: Thumbnails, jobs: Jobs,
                 model_id_of: Callable[[int], str | None]) -> None:
        self.context = context
        self.runtime = SamRuntime(context, classifier=classifier, thumbnails=thumbnails, jobs=jobs,
                                  model_id_of=model_id_of)
        self.overlays = OverlayMemo(max_side=OVERLAY_SIDE)

    def close(self) -> None:
        self.runtime.close()

    @property
    def cache(self) -> EmbeddingCache:
        return self.runtime.cache

    @property
    def precomputer(self) -> Precomputer:
        return self.runtime.precomputer

    def segmenter(self) -> Segmenter:
        """Segment Anything, loaded on first use (ModelLoadError, remembered, when it cannot be)."""
        return self.runtime.segmenter()

    def problem(self) -> str | None:
        """Why Segment Anything is not available (None when it loaded or was not tried yet)."""
        return self.runtime.problem()

    def _read(self, project: str, annotator: str | None) -> Any:
        return self.context.action(project, annotator=annotator, permission="label", write=False)

    def _write(self, project: str, annotator: str | None) -> Any:
        return self.context.action(project, annotator=annotator, permission="label", write=True)

    # -- images --------------------------------------------------------------------------------

    def image(self, project: str, image_id: int, *, annotator: str | None = None) -> ImageInfo:
        with self._read(project, annotator) as action:
            return image_info(action, image_id)

    def ready(self, image: ImageInfo) -> bool | None:
        """Is this image's embedding cached (a click will not wait)? None before the segmenter loaded."""
        return self.runtime.ready(image)

    def warm(self, project: str, image_ids: Sequence[int], *, annotator: str | None = None) -> int:
        """Compute the embeddings of these images in the background (the first first); returns how
        many were handed to the worker (0 when the segmenter is not available)."""
        with self._read(project, annotator) as action:
            images = [image_info(action, i) for i in image_ids]
        return self.runtime.warm(images)

    def warm_ahead(self, project: str, image_id: int, *, count: int = 3, annotator: str | None = None) -> int:
        """Start the encoder on this image and the next `count`, so clicks on them do not wait."""
        with self._read(project, annotator) as action:
            ahead = [image_number(image_id)]
            for _ in range(count):
                following = store.neighbour_image(action.session, project_id=action.project_id,
                                                  image_id=ahead[-1], step=1)
                if following is None or following in ahead:
                    break
                ahead.append(following)
            images = [image_info(action, i) for i in ahead]
        return self.runtime.warm(images)

    def neighbour(self, project: str, image_id: int | None, step: int, *, annotator: str | None = None) -> int | None:
        """The next (step > 0) or previous usable image by id, wrapping around (None: no images)."""
        with self._read(project, annotator) as action:
            return store.neighbour_image(action.session, project_id=action.project_id, step=step,
                                         image_id=None if image_id is None else image_number(image_id))

    def view(self, project: str, image_id: int, *, annotator: str | None = None) -> ImageRegions:
        """What the region view shows of an image: its display copy, its instances drawn into one
        PNG, its open proposals, and whether its embedding is still being computed."""
        with self._read(project, annotator) as action:
            image = image_info(action, image_id)
            rows = instances.live_instances(action, image)
            count = store.count_open_proposals(action.session, project_id=image.project_id, image_id=image.image_id)
        shown = tuple(instances.instance_info(row, name) for row, name in rows)
        overlay = self.overlays.get(image.image_id, [i.id for i in shown], [row.rle for row, _ in rows])
        return ImageRegions(image=image, display=self._display(image), instances=shown, overlay=overlay,
                            open_proposals=count, encoding=self.runtime.ready(image) is False,
                            problem=self.runtime.problem())

    def _display(self, image: ImageInfo) -> Any:
        try:
            return self.runtime.thumbnails.path(sha256=image.sha256, file_path=image.file_path, size=DISPLAY_SIDE)
        except ImageError:
            return None

    # -- click to mask -------------------------------------------------------------------------

    def _prompted(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None,
                  annotator: str | None) -> tuple[ImageInfo, Prompts, dict[int, str]]:
        with self._read(project, annotator) as action:
            image = image_info(action, image_id)
            names = repo.class_names(action.session, project_id=action.project_id)
        return image, _parse(prompts, image), names

    def segment(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None, *,
                annotator: str | None = None) -> Segmentation:
        """The candidate masks for these prompts, made at display size (OVERLAY_SIDE; a saved mask is
        made at full size): score, area and box (in image pixels) and a small overlay PNG each; the
        best choice (SAM's highest predicted IoU among non-empty masks)."""
        start = time.perf_counter()
        image, parsed, _ = self._prompted(project, image_id, prompts, annotator)
        result = self.runtime.predict(image, parsed, max_side=OVERLAY_SIDE)
        scale = image.width / result.masks.shape[2]
        masks = tuple(_candidate(k, mask, float(result.scores[k]), scale) for k, mask in enumerate(result.masks))
        return Segmentation(image_id=image.image_id, width=image.width, height=image.height, masks=masks,
                            best=best_choice(result), prompts=parsed.as_json(),
                            ms=round(1000 * (time.perf_counter() - start), 1))

    def segment_rle(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None, *,
                    annotator: str | None = None) -> RleSegmentation:
        """The candidate masks at the image's full size, as COCO RLE (the API's answer)."""
        image, parsed, _ = self._prompted(project, image_id, prompts, annotator)
        result = self.runtime.predict(image, parsed)
        masks = tuple(RleMask(index=k, score=float(result.scores[k]), area=int(m.sum()), rle=rle_encode(m))
                      for k, m in enumerate(result.masks))
        return RleSegmentation(image_id=image.image_id, masks=masks, best=best_choice(result),
                               prompts=parsed.as_json())

    def mask(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None, choice: int | None, *,
             max_side: int | None = None, annotator: str | None = None) -> tuple[ImageInfo, Prompts, np.ndarray, float]:
        """The chosen mask (recomputed from the prompts: nothing is kept between clicks), at the
        image's size or scaled to `max_side`, and SAM's score of it."""
        image, parsed, _ = self._prompted(project, image_id, prompts, annotator)
        mask, score = self._chosen(image, parsed, choice, max_side=max_side)
        return image, parsed, mask, score

    def _chosen(self, image: ImageInfo, prompts: Prompts, choice: int | None, *,
                max_side: int | None) -> tuple[np.ndarray, float]:
        result = self.runtime.predict(image, prompts, max_side=max_side)
        count = len(result.masks)
        index = best_choice(result) if choice is None else validation.whole_number(
            choice, field="choice", minimum=0, maximum=2**31)  # 1.5 is refused, not taken as mask 1
        if index >= count:
            raise InvalidInput(f"choice: {choice} is not one of the {count} masks (0-{count - 1})")
        if not result.masks[index].any():
            raise InvalidInput("mask: this mask is empty; click inside the object or pick another mask")
        return result.masks[index], float(result.scores[index])

    def _labels(self, image: ImageInfo, mask: np.ndarray, names: dict[int, str], *, k: int | None
                ) -> tuple[LabelScore, ...]:
        """CLIP's top-k classes (None: all) for the mask, on the display copy; () without CLIP."""
        pixels = self.runtime.display_pixels(image)
        probs, label_ids = region_probs(self.runtime.classifier, image.project_id, pixels,
                                        [resize_mask(mask, pixels.shape[:2])])
        return () if probs is None else top_k(probs[0], label_ids, names, k)

    def candidate_labels(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None,
                         choice: int | None, *, k: int = 3, annotator: str | None = None) -> tuple[LabelScore, ...]:
        """CLIP's top-k classes for the chosen mask (asked right after the masks, so CLIP never holds
        the masks up)."""
        image, parsed, names = self._prompted(project, image_id, prompts, annotator)
        mask, _ = self._chosen(image, parsed, choice, max_side=NAMING_SIDE)
        return self._labels(image, mask, names, k=k)

    # -- instances -----------------------------------------------------------------------------

    def add_instance(self, project: str, image_id: int, prompts: Mapping[str, Any] | Prompts | None, *,
                     choice: int | None = None, label: str | None = None,
                     annotator: str | None = None) -> InstanceInfo:
        """Save the chosen mask as an instance with `label`, or CLIP's best class when none is given."""
        image, parsed, names = self._prompted(project, image_id, prompts, annotator)
        mask, score = self._chosen(image, parsed, choice, max_side=None)
        top = self._labels(image, mask, names, k=None)  # every class: the given one's confidence too
        label, confidence = chosen_label(label, top)
        segmenter_id = self.runtime.segmenter().model_id
        with self._write(project, annotator) as action:
            label_id = class_id(repo.class_ids_by_name(action.session, project_id=action.project_id), label)
            row = instances.save(action, image, mask, label_id=label_id, score=score, confidence=confidence,
                                 prompts=parsed.as_json(), segmenter_id=segmenter_id)
            return instances.instance_info(row, label)

    def instances(self, project: str, image_id: int, *, annotator: str | None = None) -> list[InstanceInfo]:
        with self._read(project, annotator) as action:
            image = image_info(action, image_id)
            return [instances.instance_info(row, name) for row, name in instances.live_instances(action, image)]

    def relabel_instance(self, project: str, instance_id: int, label: str, *, reason: str | None = None,
                         annotator: str | None = None) -> InstanceInfo:
        """A new class for an instance (someone else's only as a reviewer or admin, or when they are
        not labeling that image now); `reason`, why, is kept on the region event."""
        why = instances.checked_reason(reason)
        with self._write(project, annotator) as action:
            row = instances.editable(action, instance_id)
            instances.relabel(action, row, class_id(_live(action), label), reason=why)
            return instances.instance_info(row, label)

    def delete_instance(self, project: str, instance_id: int, *, reason: str | None = None,
                        annotator: str | None = None) -> InstanceInfo:
        """Delete an instance (the same rule as relabel_instance); `reason` is kept on the event."""
        why = instances.checked_reason(reason)
        with self._write(project, annotator) as action:
            row = instances.editable(action, instance_id)
            instances.delete(action, row, reason=why)
            return instances.instance_info(row, repo.class_names(action.session, project_id=action.project_id)
                                           .get(row.label_id))

    def undo(self, project: str, *, annotator: str | None = None) -> UndoResult:
        """Undo this annotator's latest region action (add, delete, relabel, accept or reject a proposal)."""
        with self._write(project, annotator) as action:
            return undo_latest(action)

    # -- proposals and embeddings ahead of time --------------------------------------------------

    def propose(self, project: str, *, image_ids: Sequence[int] | None = None,
                min_confidence: float = proposals.DEFAULT_MIN_CONFIDENCE, points_per_side: int = 16,
                max_regions: int = 50, pred_iou_thresh: float = proposals.PRED_IOU_THRESH,
                stability_score_thresh: float = proposals.STABILITY_THRESH, annotator: str | None = None,
                progress: bool = False, on_progress: Progress | None = None) -> ProposeSummary:
        """Propose regions on these images (default: every usable image of the project); regions whose
        best class is below `min_confidence` are dropped. The two thresholds are the generator's filters."""
        generator = proposals.check_options(
            min_confidence=min_confidence, points_per_side=points_per_side, max_masks=max_regions,
            pred_iou_thresh=pred_iou_thresh, stability_score_thresh=stability_score_thresh)
        ids = self._image_ids(project, image_ids, annotator)
        with _bar(len(ids), "propose regions", progress, on_progress) as report:
            return proposals.propose(self.runtime, project, ids, min_confidence=min_confidence, generator=generator,
                                     annotator=annotator, on_progress=report)

    def next_proposals(self, project: str, *, image_id: int | None = None, limit: int = 1, exclude: Sequence[int] = (),
                       k: int = 3, png: bool = False, annotator: str | None = None) -> list[ProposalInfo]:
        """Open proposals, the least certain first, with their top-k classes (and overlay PNGs with `png`);
        at most `limit` (1..MAX_PROPOSALS)."""
        limit = validation.capped_limit(limit, field="limit", maximum=MAX_PROPOSALS)
        image_id = None if image_id is None else validation.record_id(image_id, field="image_id")
        with self._read(project, annotator) as action:
            return proposals.open_proposals(action, image_id=image_id, limit=limit, exclude=exclude, k=k, png=png)

    def decide_proposal(self, project: str, proposal_id: int, *, accept: bool, label: str | None = None,
                        annotator: str | None = None) -> ProposalDecision:
        """Accept (it becomes an instance, with `label` or its best class) or reject an open proposal."""
        with self._write(project, annotator) as action:
            return proposals.decide(action, validation.record_id(proposal_id, field="proposal_id"), accept=accept,
                                    label=label)

    def embed_all(self, project: str, *, image_ids: Sequence[int] | None = None, progress: bool = False,
                  on_progress: Progress | None = None, annotator: str | None = None) -> EmbedReport:
        """Cache the SAM embedding of every image (or these) that has none yet."""
        self.runtime.segmenter()
        ids = self._image_ids(project, image_ids, annotator)
        with _bar(len(ids), "SAM embeddings", progress, on_progress) as report:
            return embed_all(self.runtime, project, ids, annotator=annotator, on_progress=report)

    def start_propose_all(self, project: str, *, annotator: str | None = None,
                          min_confidence: float = proposals.DEFAULT_MIN_CONFIDENCE) -> SubmittedJob:
        """`propose` on every image as a background job; the project and the annotator are checked now."""
        self._image_ids(project, [], annotator)

        def work(progress: Any) -> dict[str, Any]:
            progress.stage("propose regions")
            return asdict(self.propose(project, annotator=annotator, min_confidence=min_confidence,
                                       on_progress=progress))

        return self.runtime.jobs.submit(kind="propose", project=project, work=work, owner=annotator)

    def start_embed_all(self, project: str, *, annotator: str | None = None) -> SubmittedJob:
        """`embed_all` as a background job (the web app's "Prepare every image" button)."""
        self._image_ids(project, [], annotator)

        def work(progress: Any) -> dict[str, Any]:
            progress.stage("SAM embeddings")
            return asdict(self.embed_all(project, annotator=annotator, on_progress=progress))

        return self.runtime.jobs.submit(kind="sam-embed", project=project, work=work, owner=annotator)

    def _image_ids(self, project: str, image_ids: Sequence[int] | None, annotator: str | None) -> list[int]:
        with self._read(project, annotator) as action:
            if image_ids is not None:
                return validation.unique_ids(image_ids, field="image_ids", maximum=MAX_IMAGES)
            return store.usable_image_ids(action.session, project_id=action.project_id)


def best_choice(result: MaskPrediction) -> int:
    """The mask SAM rates highest, preferring a non-empty one."""
    order = np.argsort(-np.asarray(result.scores))
    return next((int(k) for k in order if result.masks[k].any()), int(order[0]))


def _parse(prompts: Mapping[str, Any] | Prompts | None, image: ImageInfo) -> Prompts:
    if isinstance(prompts, Prompts):
        return prompts
    return Prompts.parse(prompts, width=image.width, height=image.height)


def _candidate(index: int, mask: np.ndarray, score: float, scale: float) -> CandidateMask:
    bbox = tuple(round(v * scale, 1) for v in mask_bbox(mask)) if mask.any() else (0.0, 0.0, 0.0, 0.0)
    return CandidateMask(index=index, score=score, area=int(round(mask.sum() * scale * scale)),
                         bbox=bbox, png=overlay_png(mask, max_side=OVERLAY_SIDE))


def _live(action: Action) -> dict[str, int]:
    return repo.class_ids_by_name(action.session, project_id=action.project_id)


class _bar:
    """A tqdm bar (when asked) feeding `on_progress` too; a context manager that closes the bar."""

    def __init__(self, total: int, desc: str, show: bool, on_progress: Progress | None) -> None:
        self.bar = tqdm(total=total, desc=desc, unit="img", disable=not show)
        self.on_progress = on_progress

    def __enter__(self) -> Progress:
        return self.report

    def report(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)
        if self.on_progress is not None:
            self.on_progress(done, total)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
