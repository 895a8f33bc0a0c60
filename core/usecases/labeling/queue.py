"""The live labeling state of one project: cached embeddings, the adapted classifier, the queue.

Everything here is derived from the store (embeddings, text head, current labels, skip events), so
after a restart the same state, and the same queue order, is rebuilt. The rng is seeded from the
project and the number of labels for the same reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from core.errors import NotFound
from core.labeling.adapt import Classifier
from core.labeling.context import LabeledContext, labeled_context
from core.labeling.estimate import DEFAULT_SHARE, audit_slots, draw_audits
from core.labeling.semi import fit_semi
from core.labeling.strategies import (
    COLD_START_SAMPLE,
    DEFAULT_STRATEGY,
    auto_phase,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    select,
)

QUEUE_DEPTH = 64
ZERO_SHOT_CACHE_BYTES = 256 * 2**20
SKIPPED = "skipped earlier"
ACCEPTED = -2  # labels[] of an image whose pseudo-label was accepted ("accept the rest"): out of the
               # pool, and not a human label the classifier learns from
CANDIDATES_PER_SLOT = 32     # the strategy sees the top (this x depth) of the pool by its own score
MIN_CANDIDATES = 4096
PREFILTER_SCORES = {
    "least_confidence": least_confidence_scores, "margin": margin_scores, "entropy": entropy_scores,
    "margin_diverse": margin_scores, "entropy_diverse": entropy_scores, "error_seeking": margin_scores,
}
UNIFORM_CANDIDATES = ("cold_start", "typical_first")  # strategies that sample the pool themselves


def audit_share(project: object) -> float:
    """The project's share of served items that are blind random audits (settings.audit_share)."""
    settings = getattr(project, "settings", None) or {}
    return float(settings.get("audit_share", DEFAULT_SHARE))


@dataclass(frozen=True)
class Ranked:
    image_id: int
    score: float
    strategy: str
    audit: bool = False  # drawn uniformly from the unlabeled pool; served exactly like the others


@dataclass
class ProjectState:
    project_id: int
    model_id: str | None
    label_ids: list[int]
    image_ids: np.ndarray              # (N,) embedded images, sorted
    embeddings: np.ndarray             # (N, D) float32, L2-normalised
    head: np.ndarray | None            # (K, D) zero-shot text head, None = cold start
    logit_scale: float
    labels: np.ndarray                 # (N,) class index or -1
    unembedded: list[int]              # images with no embedding yet: queued after the ranked ones
    labeled_unembedded: set[int]
    skipped: dict[int, int]            # image_id -> order of the skip
    strategy_override: str | None = None
    audit_share: float = DEFAULT_SHARE
    held_out: set[int] = field(default_factory=set)  # audited images: their labels do not train the classifier
    class_names: dict[int, str] = field(default_factory=dict)   # every class, archived ones too
    head_key: str | None = None
    classifier: Classifier | None = None
    probs: np.ndarray | None = None
    context: LabeledContext | None = None  # what the labeled set tells the strategy (core/labeling/context.py)
    queue: list[Ranked] = field(default_factory=list)
    update_seconds: float = 0.0
    depth: int = QUEUE_DEPTH
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.position = {int(i): k for k, i in enumerate(self.image_ids)}
        self.center = self.embeddings.mean(axis=0) if self.embeddings.shape[0] else None
        self.labels_version = 0
        self.changes = 0  # every change an action makes in memory (labels, skips, held-out audits)
        self.zs_logits: np.ndarray | None = None
        self.refitted_at = float("-inf")  # perf_counter of the last background refit

    # -- learning ----------------------------------------------------------------------------

    def refit(self) -> None:
        """Refit the classifier on every labeled item, rescore all, rebuild the queue (in one go)."""
        start = time.perf_counter()
        classifier, probs, context = self.fit(self.training_labels())
        self.install(classifier, probs, labels_version=self.labels_version, context=context)
        self.update_seconds = time.perf_counter() - start

    def training_labels(self) -> np.ndarray:
        """A copy of the labels the classifier learns from: the human ones, less the audits' (held out,
        so the live classifier's predictions on them are an honest test; core/labeling/estimate.py)."""
        labels = self.labels.copy()
        if self.held_out:
            labels[[self.position[i] for i in self.held_out if i in self.position]] = -1
        return labels

    def fit(self, labels: np.ndarray) -> tuple[Classifier | None, np.ndarray | None, LabeledContext | None]:
        """The heavy part, safe to run without the lock on a copy of the labels: the semi-supervised
        classifier (core/labeling/semi.py), every image's probabilities, and the strategies' context."""
        if not self.embeddings.shape[0] or self.center is None:
            return None, None, None
        rng = np.random.default_rng([self.project_id, int((labels >= 0).sum())])
        human = np.where(labels >= 0, labels, -1)
        classifier = fit_semi(self.embeddings, human, num_classes=len(self.label_ids), text_head=self.head,
                              logit_scale=self.logit_scale, rng=rng, center=self.center)
        probs = classifier.predict_proba(self.embeddings, zero_shot_logits=self._zero_shot_logits(classifier))
        context = labeled_context(self.embeddings, human, probs, head=self.head, logit_scale=self.logit_scale,
                                  center=self.center, rng=rng)
        return classifier, probs, context

    def _zero_shot_logits(self, classifier: Classifier) -> np.ndarray | None:
        """The zero-shot part of every rescore never changes: computed once per state when it fits
        in memory comfortably (N x K float32 up to 256 MB), else recomputed each time."""
        if self.head is None or self.embeddings.shape[0] * len(self.label_ids) * 4 > ZERO_SHOT_CACHE_BYTES:
            return None
        if self.zs_logits is None:
            self.zs_logits = classifier.zero_shot_logits(self.embeddings)
        return self.zs_logits

    def install(self, classifier: Classifier | None, probs: np.ndarray | None, *, labels_version: int,
                context: LabeledContext | None = None) -> bool:
        """Swap in a fitted classifier and re-rank; True when it was fitted on the current labels."""
        self.classifier, self.probs, self.context = classifier, probs, context
        self.rerank()
        return labels_version == self.labels_version

    def rerank(self) -> None:
        """Rebuild the queue from the current probabilities (cheap: no refit)."""
        self._rank(self._rng())

    def _rng(self) -> np.random.Generator:
        """Seeded by project and label count: the same store gives the same queue after a restart."""
        return np.random.default_rng([self.project_id, int((self.labels >= 0).sum())])

    @property
    def strategy(self) -> str:
        return self.strategy_override or DEFAULT_STRATEGY

    def _rank(self, rng: np.random.Generator) -> None:
        pool = self.pool_rows()
        pool = pool[[int(self.image_ids[p]) not in self.skipped for p in pool]] if self.skipped else pool
        ranked: list[Ranked] = []
        if pool.size and self.probs is not None:
            strategy = self.strategy
            strategy = auto_phase(self.context) if strategy == "auto" else strategy  # the reason shown
            pool = self._candidates(pool, self.probs, strategy, rng)
            chosen = select(strategy, self.probs[pool], self.embeddings[pool], n=min(self.depth, pool.size),
                            rng=rng, context=self.context)
            ranked = [Ranked(int(self.image_ids[pool[i]]), float(s), strategy)
                      for i, s in zip(chosen.indices, chosen.scores, strict=True)]
            ranked = self._with_audits(ranked)
        ranked += [Ranked(i, 0.0, "not embedded yet") for i in self.unembedded
                   if i not in self.labeled_unembedded and i not in self.skipped]
        ranked += [Ranked(i, 0.0, SKIPPED) for i, _ in sorted(self.skipped.items(), key=lambda kv: kv[1])]
        self.queue = ranked

    def _with_audits(self, ranked: list[Ranked]) -> list[Ranked]:
        """Put blind audits into a share of the ranked slots: each takes the slot's place with its
        reason and score (nothing tells it apart), so that share of the items served are audits (the
        slot's item moves behind the ranked ones and is ranked again at the next refit), and is drawn
        uniformly from the whole unlabeled pool, skipped images included. Own rng, so the strategy's
        choices do not depend on the share."""
        slots = np.flatnonzero(audit_slots(len(ranked), share=self.audit_share, rng=self._audit_rng()))
        if not slots.size:
            return ranked
        drawn = self.image_ids[draw_audits(self.pool_rows(), slots.size, rng=self._audit_rng(1))]
        audits = {int(s): Ranked(int(i), ranked[s].score, ranked[s].strategy, audit=True)
                  for s, i in zip(slots, drawn, strict=False)}
        taken = {a.image_id for a in audits.values()}
        out: list[Ranked] = []
        displaced: list[Ranked] = []
        for k, r in enumerate(ranked):
            if k in audits:
                out.append(audits[k])
                displaced += [r] if r.image_id not in taken else []
            elif r.image_id not in taken:
                out.append(r)
        return out + displaced  # still queued (after the ranked ones) until the next ranking

    def _audit_rng(self, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.project_id, int((self.labels >= 0).sum()), 13, stream])

    def pool_rows(self) -> np.ndarray:
        """Rows of the unlabeled pool the estimate is about: embedded, no label, not accepted."""
        return np.flatnonzero(self.labels == -1)

    def _candidates(self, pool: np.ndarray, probs: np.ndarray, strategy: str,
                    rng: np.random.Generator) -> np.ndarray:
        """Cut the pool down before the strategy runs, so a 100k-image project does not copy its
        embeddings on every click. Uncertainty strategies keep the top of the pool by their own score
        (they would pick from there anyway; the diverse ones look at 5 x depth); random and cold start
        get a uniform sample (cold start samples the same way inside)."""
        limit = max(MIN_CANDIDATES, CANDIDATES_PER_SLOT * self.depth)
        if strategy in UNIFORM_CANDIDATES:
            limit = max(limit, COLD_START_SAMPLE)
        if pool.size <= limit:
            return pool
        score = PREFILTER_SCORES.get(strategy)
        if score is None:
            return np.sort(rng.choice(pool, size=limit, replace=False))
        values = score(probs[pool])
        return np.sort(pool[np.argpartition(-values, limit - 1)[:limit]])

    # -- changes -----------------------------------------------------------------------------

    def set_label(self, image_id: int, label_id: int | None, *, accepted: bool = False) -> None:
        """`accepted`: the model's label taken by "accept the rest" (leaves the pool, not learned from)."""
        self.labels_version += 1
        self.changes += 1
        index = self.label_ids.index(label_id) if label_id in self.label_ids else -1
        index = ACCEPTED if accepted and index >= 0 else index
        if image_id in self.position:
            self.labels[self.position[image_id]] = index
        elif index != -1:
            self.labeled_unembedded.add(image_id)
        else:
            self.labeled_unembedded.discard(image_id)
        if index != -1:
            self.skipped.pop(image_id, None)

    def skip(self, image_id: int, order: int) -> None:
        self.changes += 1
        self.skipped[image_id] = order

    def unskip(self, image_id: int) -> None:
        self.changes += 1
        self.skipped.pop(image_id, None)

    def hold_out(self, image_ids: Iterable[int]) -> None:
        """Audit draws: the classifier will not learn their labels."""
        self.changes += 1
        self.held_out.update(image_ids)

    # -- reading -----------------------------------------------------------------------------

    def is_labeled(self, image_id: int) -> bool:
        if image_id in self.position:
            return bool(self.labels[self.position[image_id]] != -1)
        return image_id in self.labeled_unembedded

    def live_class_id(self, label: str) -> int:
        """The id of a live class named `label` (NotFound lists the classes)."""
        for label_id in self.label_ids:
            if self.class_names.get(label_id) == label:
                return label_id
        names = ", ".join(self.class_names[i] for i in self.label_ids if i in self.class_names)
        raise NotFound(f"label: '{label}' is not a class of this project (classes: {names})")

    def top_k(self, image_id: int, k: int) -> list[tuple[int, float]]:
        """(label_id, probability) of the current classifier, best first; [] when not scored."""
        if self.probs is None or image_id not in self.position:
            return []
        row = self.probs[self.position[image_id]]
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.label_ids[j], float(row[j])) for j in order]

    def next(self, n: int, *, exclude: AbstractSet[int] = frozenset()) -> list[Ranked]:
        if n + len(exclude) > self.depth:
            self.depth = n + len(exclude)
            self.rerank()
        out = self._open(exclude)
        if len(out) < n:  # decisions used up the ranked part before the next refit: rank again now
            self.rerank()
            out = self._open(exclude)
        return out[:n]

    def _open(self, exclude: AbstractSet[int]) -> list[Ranked]:
        return [r for r in self.queue if r.image_id not in exclude and not self.is_labeled(r.image_id)
                and (r.image_id not in self.skipped or r.strategy == SKIPPED or r.audit)]
