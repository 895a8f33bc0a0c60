"""Blind random audits in `clipmark simulate`, drawn as the app draws them (core.labeling.estimate):
each label of a round is an audit with probability `share`, drawn uniformly from the unlabeled pool;
audits count as labels used and, as in the app, are held out of training (`audited`). After each
refit the estimate the dashboard would show is computed from them next to the pool's true accuracy."""

from __future__ import annotations

import numpy as np

from core.labeling import estimate as est

EST_COLUMNS = ("est_acc_unlabeled", "est_low", "est_high")
COVERAGE_AFTER = 100   # coverage and error are reported on the points after this many labels

class AuditTrack:
    """The audits of one simulated run; its own rngs, so the strategies' choices do not move."""

    def __init__(self, *, share: float, seed: int, size: int) -> None:
        self.share = share
        self.rng = np.random.default_rng([seed, 13])
        self.audited = np.zeros(size, dtype=bool)
        self.pool_at_draw = np.zeros(size, dtype=np.int64)

    def draw(self, labeled: np.ndarray, *, need: int) -> np.ndarray:
        """Audit rows for a round of `need` labels; they are marked labeled (an oracle answers them)."""
        count = int(est.audit_slots(need, share=self.share, rng=self.rng).sum())
        drawn = est.draw_audits(np.flatnonzero(~labeled), count, rng=self.rng)
        self.pool_at_draw[drawn] = int((~labeled).sum())
        labeled[drawn] = True
        self.audited[drawn] = True
        return drawn

    def estimate(self, truth: np.ndarray, labeled: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        """The dashboard's estimate now, from the live `probs` (NaN until an audit is answered)."""
        rows = np.flatnonzero(self.audited)
        if not rows.size:
            return dict.fromkeys(EST_COLUMNS, float("nan"))
        shrink = est.shrink_since(int((~labeled).sum()), self.pool_at_draw[rows])
        found = est.estimate(probs[rows].argmax(axis=1) == truth[rows], shrink=shrink)
        return {"est_acc_unlabeled": float(found.value or 0.0), "est_low": found.low, "est_high": found.high}


def audit_summary(rows: list[dict[str, object]], strategy: str) -> dict[str, object]:
    """Share of points (after COVERAGE_AFTER labels) whose interval covers the true accuracy of the
    unlabeled pool, and the mean absolute error of the estimate there."""
    points = [r for r in rows if r["strategy"] == strategy and int(r["labels_used"]) >= COVERAGE_AFTER  # type: ignore[call-overload]
              and np.isfinite(float(r["est_acc_unlabeled"])) and np.isfinite(float(r["acc_unlabeled"]))]  # type: ignore[arg-type]
    if not points:
        return {"estimate_points": 0, "estimate_coverage": None, "estimate_mae": None}
    truth = np.array([float(r["acc_unlabeled"]) for r in points])  # type: ignore[arg-type]
    value, low, high = (np.array([float(r[k]) for r in points]) for k in EST_COLUMNS)  # type: ignore[arg-type]
    return {"estimate_points": len(points), "estimate_coverage": float(((low <= truth) & (truth <= high)).mean()),
            "estimate_mae": float(np.abs(value - truth).mean()),
            "estimate_after_labels": COVERAGE_AFTER}
