"""Builders shared by tests and benches: a project whose embeddings and text head are real CLIP
vectors from a shared .npz (no image decoding needed), or synthetic ones for size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.service import Service
from core.store import repo
from core.store.repo import ClassSpec

NPZ_MODEL_ID = "openai-ViT-B-32@npz"


def load_npz(path: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray | None]:
    data = np.load(path, allow_pickle=False)
    emb = data["image_embeddings"].astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    head = data["text_embeddings"].astype(np.float32) if "text_embeddings" in data else None
    labels = data["labels"].astype(np.int64)
    if limit is not None:
        emb, labels = emb[:limit], labels[:limit]
    return emb, labels, [str(c) for c in data["class_names"]], head


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def load_classes(path: Path, classes: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(embeddings, labels, text head) of a shared .npz, all L2-normalised; only the first `classes`."""
    with np.load(path) as archive:
        emb, y = unit(archive["image_embeddings"]), archive["labels"].astype(np.int64)
        head = unit(archive["text_embeddings"]) if "text_embeddings" in archive.files else None
    if classes is not None:
        keep = y < classes
        emb, y, head = emb[keep], y[keep], None if head is None else head[:classes]
    return emb, y, head


def project_from_vectors(
    service: Service, name: str, *, embeddings: np.ndarray, class_names: list[str], head: np.ndarray | None,
    logit_scale: float = 100.0,
) -> list[int]:
    """Create a project whose images carry the given embeddings (and text head); returns image ids."""
    service.projects.create(name, classes=[ClassSpec(c) for c in class_names])
    with service.context.sessions.begin() as session:
        project = repo.project_by_name(session, name=name)
        project.settings = {"model_id": NPZ_MODEL_ID}
        ids = []
        for k in range(embeddings.shape[0]):
            image = repo.add_image(session, project_id=project.id, sha256=f"{k:064x}",
                                   original_path=f"vectors/{k}.jpg", file_path=f"vectors/{k}.jpg",
                                   width=224, height=224, format="JPEG")
            ids.append(image.id)
        repo.add_embeddings(session, model_id=NPZ_MODEL_ID, image_ids=ids, vectors=embeddings)
        if head is not None:
            from core.usecases.scoring import head_key

            classes = repo.classes_of(session, project_id=project.id)
            repo.save_text_head(session, project_id=project.id, model_id=NPZ_MODEL_ID,
                                prompts_hash=head_key(classes), label_ids=[c.id for c in classes],
                                vectors=head, logit_scale=logit_scale)
    return ids
