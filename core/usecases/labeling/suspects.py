"""Label-error suspects of a project's live state: human labels the out-of-fold model contradicts,
and near-duplicates labeled differently."""

from __future__ import annotations

import numpy as np

from core.labeling import suspects
from core.usecases.labeling.queue import ProjectState
from core.usecases.results import NearDuplicate, Suspect, Suspects


def find_suspects(state: ProjectState, *, limit: int = 100) -> Suspects:
    with state.lock:
        labeled = np.flatnonzero(state.labels >= 0)
        emb, labels = state.embeddings[labeled], state.labels[labeled]
        rng = np.random.default_rng([state.project_id, labeled.size, 7])
        found: list[suspects.Suspect] = []
        pairs: list[tuple[int, int, float]] = []
        if labeled.size >= 2:
            probs = suspects.out_of_fold_probs(emb, labels, num_classes=len(state.label_ids),
                                               text_head=state.head, logit_scale=state.logit_scale,
                                               rng=rng, center=state.embeddings.mean(axis=0))
            found = suspects.label_error_suspects(probs, labels)[:limit]
            pairs = suspects.near_duplicate_conflicts(emb, labels)[:limit]
        ids, label_ids, names = state.image_ids[labeled], list(state.label_ids), dict(state.class_names)

    def name(j: int) -> str | None:
        return names.get(label_ids[j])

    return Suspects(
        suspects=tuple(Suspect(image_id=int(ids[s.index]), label=name(s.given), suggested=name(s.predicted),
                               p_suggested=s.p_predicted, p_label=s.p_given, score=s.score) for s in found),
        near_duplicates=tuple(NearDuplicate(image_ids=(int(ids[i]), int(ids[j])),
                                            labels=(name(int(labels[i])), name(int(labels[j]))), cosine=c)
                              for i, j, c in pairs))
