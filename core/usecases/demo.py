"""A ready demo project: the photographs that ship with scikit-image (`skimage.data`, no download),
a few class names, and embeddings + pseudo-labels computed in the background with the configured
model. If that model cannot be loaded, the images are still imported and can be labeled by hand."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np

from core.store.repo import ClassSpec
from core.usecases.jobs.results import JobStatus
from core.usecases.jobs.usecase import Jobs
from core.usecases.projects import Projects

DEMO_PROJECT = "demo"
# skimage.data loader -> file name; every one of these is bundled with scikit-image.
DEMO_IMAGES = {
    "astronaut": "astronaut", "chelsea": "cat-chelsea", "coffee": "coffee", "rocket": "rocket",
    "stereo_motorcycle": "motorcycle", "hubble_deep_field": "hubble-deep-field", "retina": "retina",
    "immunohistochemistry": "immunohistochemistry", "camera": "cameraman", "coins": "coins", "clock": "clock",
    "moon": "moon", "page": "page", "text": "text", "brick": "brick", "grass": "grass", "gravel": "gravel",
    "horse": "horse", "cell": "cell", "colorwheel": "colorwheel", "logo": "logo",
}
DEMO_CLASSES = (
    ClassSpec("person"), ClassSpec("cat"), ClassSpec("coffee"), ClassSpec("rocket"), ClassSpec("motorcycle"),
    ClassSpec("space", description="stars and galaxies in the night sky"),
    ClassSpec("microscopy", description="cells or tissue under a microscope"),
    ClassSpec("texture", description="a close-up of a surface such as brick, grass or gravel"),
    ClassSpec("text", description="printed text on a page"),
)


def write_demo_images(folder: Path) -> list[Path]:
    """Write the scikit-image photographs as PNG files into `folder` (kept if already there)."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for loader, name in DEMO_IMAGES.items():
        target = folder / f"{name}.png"
        if not target.is_file():
            array = getattr(data, loader)()
            array = array[0] if isinstance(array, tuple) else array
            Image.fromarray(_as_uint8(array)).save(target)
        written.append(target)
    return written


def _as_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        scaled = (array - array.min()) / max(float(np.ptp(array)), 1e-12)
        return (scaled * 255).astype(np.uint8)
    return array


class DemoResult(TypedDict):
    project: str
    created: bool
    job: JobStatus | None


def prepare_demo(projects: Projects, jobs: Jobs, *, media_dir: Path, project: str = DEMO_PROJECT) -> DemoResult:
    """Create the demo project (once) and start its import + embedding + prediction job; `job` is
    None when there is nothing left to do."""
    created = project not in projects.names()
    if created:
        projects.create(project, classes=DEMO_CLASSES)
    status = projects.status(project)
    if status.images and status.latest_prediction is not None:
        return {"project": project, "created": created, "job": None}
    job = jobs.start_import(project, write_demo_images(media_dir / "demo-images"), embed=True)
    return {"project": project, "created": created, "job": job}
