"""Compute Segment Anything image embeddings ahead of a labeling session (`clipmark sam-embed`,
the web app's "Prepare every image" button), so that no first click waits for the encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from core.errors import ImageError, NotFound

if TYPE_CHECKING:
    from core.regions import Regions


def embed_all(regions: Regions, project: str, *, image_ids: Sequence[int] | None = None, progress: bool = False,
              on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Embed every image (or these) that is not cached yet; bad images are reported, the rest go on."""
    from tqdm import tqdm

    from core.proposals import _image_ids

    segmenter = regions.segmenter()
    ids = _image_ids(regions, project, image_ids, None)
    report: dict[str, Any] = {"images": len(ids), "computed": 0, "cached": 0, "errors": [],
                              "model_id": segmenter.model_id}
    for done, image_id in enumerate(tqdm(ids, desc="SAM embeddings", unit="img", disable=not progress), start=1):
        try:
            image = regions.image(project, image_id)
            if regions.cache.contains(segmenter.model_id, image["sha256"]):
                report["cached"] += 1
            else:
                regions.embedding(image)
                report["computed"] += 1
        except (ImageError, NotFound) as exc:
            report["errors"].append({"file": f"image #{image_id}", "reason": str(exc)})
        if on_progress is not None:
            on_progress(done, len(ids))
    return report


def start_embed_all(regions: Regions, project: str, *, annotator: str | None = None) -> dict[str, Any]:
    """`embed_all` as a background job (the web app's "Prepare every image" button)."""
    from core.proposals import _image_ids

    _image_ids(regions, project, [], annotator)  # checks the project and the user now, not in the job

    def work(progress: Any) -> dict[str, Any]:
        progress.stage("SAM embeddings")
        return embed_all(regions, project, on_progress=progress)

    return regions.service.workspace().jobs.submit(kind="sam-embed", project=project, work=work)


def start_propose(regions: Regions, project: str, *, annotator: str | None = None,
                  min_confidence: float | None = None) -> dict[str, Any]:
    """Propose regions on every image of the project as a background job (the web app's jobs panel)."""
    from core.proposals import DEFAULT_MIN_CONFIDENCE, _image_ids, propose

    _image_ids(regions, project, [], annotator)  # checks the project and the user now, not in the job

    def work(progress: Any) -> dict[str, Any]:
        progress.stage("propose regions")
        return propose(regions, project, annotator=annotator, on_progress=progress,
                       min_confidence=DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence).as_dict()

    return regions.service.workspace().jobs.submit(kind="propose", project=project, work=work)
