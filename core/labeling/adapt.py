"""Learning from corrections: a text-anchored linear probe, checked on held-out folds and gated.

Model (K classes): `logits(x) = logit_scale * x @ T.T + [gap(x) <= gate] * (x - mu) @ Delta`, with
`T` the zero-shot text head (absent in cold start) and `Delta` (D x K) fitted by L2-penalised
multinomial logistic regression on the labeled items only. Why this shape:

- `Delta = 0` is zero-shot exactly, and the penalty pulls toward it, so few labels move little.
- The modality gap: image-image cosines share a large common component that image-text cosines
  lack. `Delta` acts on *centered* image features (`mu` = mean image embedding), so a labeled class
  cannot raise its logit on every image; no bias term is learned, so the class mix of the labeled
  set (skewed by uncertainty sampling) does not become a prior, and classes with no labels keep
  their zero-shot logit (or 0 = uniform in cold start) away from the labeled evidence.
- The penalty acts on the summed loss, so each class's `Delta` grows with its own labels (a class
  with one label moves little). It is picked from a grid by cross-validation on the labeled set,
  and the probe is kept only when it beats zero-shot clearly on the held-out folds (paired test).
- The gate: uncertainty sampling labels only items the head is unsure of, so held-out folds say
  nothing about confident items. The probe therefore only touches images whose zero-shot top-1 /
  top-2 logit gap is at most the largest gap at which zero-shot was seen to be wrong on a labeled
  item; above it, the zero-shot prediction stands (it has never been caught wrong there). Random
  labels catch confident mistakes too, which opens the gate wide. The folds use the same rule.

`Delta` lives in the span of the centered labeled features (representer theorem), so the fit works
in their r-dim principal basis, where Boehning's Hessian bound `0.5 F'F + lam` is diagonal: each
iteration is two n x r x K matmuls. Classes that no labeled item has, or guesses in its top
ACTIVE_TOP, keep `Delta = 0` (their softmax mass enters the loss as one fixed column).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from core.errors import InvalidInput
from core.labeling.classmeans import ClassMeans

# Penalty grids (on the summed loss). With a text head the prior is informative and held-out folds
# of a few hundred labels are noisy, so the probe gets less freedom than in a cold start.
PENALTIES_HEAD = (3.0, 1.0, 0.3)
PENALTIES_COLD = (3.0, 1.0, 0.3, 0.1)
MAX_RANK = 256
ITERATIONS = 40
CV_ITERATIONS = 20
MAX_FOLDS = 3
SIGNIFICANCE = 1.0
ACTIVE_TOP = 5


@dataclass(frozen=True)
class Classifier:
    """Scores images: `predict_proba(embeddings) -> probs` (N x K float32)."""

    text_head: np.ndarray | None
    logit_scale: float
    num_classes: int
    weights: np.ndarray | None  # D x A: Delta's columns for the `classes` the probe moved
    offset: np.ndarray | None  # A: -mu @ weights
    version: str
    num_labels: int
    penalty: float | None
    cv_accuracy: float | None
    cv_zero_shot_accuracy: float | None
    gate: float = np.inf
    classes: np.ndarray | None = None  # the A classes the probe moves (labeled ones + their top guesses)
    means: ClassMeans | None = None  # semi-supervised class means (core/labeling/semi.py), used instead of Delta
    means_weight: float = 0.0

    def zero_shot_logits(self, embeddings: np.ndarray) -> np.ndarray:
        """`logit_scale * E @ T.T` (zeros in cold start): cache it per collection, it never changes."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if self.text_head is None:
            return np.zeros((emb.shape[0], self.num_classes), dtype=np.float32)
        out = emb @ self.text_head.T
        out *= np.float32(self.logit_scale)
        return out

    def logits(self, embeddings: np.ndarray, *, zero_shot_logits: np.ndarray | None = None) -> np.ndarray:
        """Raw scores (N x K float32): zero-shot, plus Delta where the zero-shot gap <= `gate`.

        `zero_shot_logits`: the cached output of `zero_shot_logits(embeddings)` (left unchanged)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if zero_shot_logits is None:
            out = self.zero_shot_logits(emb)
        elif zero_shot_logits.shape != (emb.shape[0], self.num_classes):
            raise InvalidInput(f"zero_shot_logits: expected shape ({emb.shape[0]}, {self.num_classes}), "
                               f"got {zero_shot_logits.shape}")
        else:
            out = np.array(zero_shot_logits, dtype=np.float32)
        if self.means is not None:
            return self._plus_means(emb, out)
        if self.weights is None or self.offset is None or self.classes is None:
            return out
        passed = None if not np.isfinite(self.gate) else top_gap(out) <= self.gate
        if passed is not None and 4 * int(passed.sum()) < emb.shape[0]:  # few rows: skip the full matmul
            rows = np.flatnonzero(passed)
            out[np.ix_(rows, self.classes)] += emb[rows] @ self.weights + self.offset
            return out
        delta = emb @ self.weights
        delta += self.offset
        if passed is not None:
            delta[~passed] = 0.0
        if self.classes.size == self.num_classes:
            out += delta
        else:
            out[:, self.classes] += delta
        return out

    def _plus_means(self, emb: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Zero-shot (or uniform) plus `means_weight` x the class means' log-probabilities, gated."""
        assert self.means is not None
        weight = np.float32(self.means_weight)
        if not np.isfinite(self.gate):  # every row: no N x D gather
            out += weight * self.means.log_probs(emb)
            return out
        rows = np.flatnonzero(top_gap(out) <= self.gate)
        out[rows] += weight * self.means.log_probs(emb[rows])
        return out

    def predict_proba(self, embeddings: np.ndarray, *, zero_shot_logits: np.ndarray | None = None) -> np.ndarray:
        """Softmax of `logits`; exactly `softmax(logit_scale * E @ T.T)` when not adapted."""
        return _softmax_inplace(self.logits(embeddings, zero_shot_logits=zero_shot_logits))

    def report(self) -> dict[str, object]:
        """The blend parameters chosen, for logs and the UI."""
        return {
            "version": self.version,
            "num_labels": self.num_labels,
            "penalty": self.penalty,
            "cv_accuracy": self.cv_accuracy,
            "cv_zero_shot_accuracy": self.cv_zero_shot_accuracy,
            "gate": None if not np.isfinite(self.gate) else self.gate,
            "method": "class-means" if self.means is not None else "probe" if self.weights is not None else "none",
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float32 (the input is left alone)."""
    return _softmax_inplace(np.array(logits, dtype=np.float32))


def top_gap(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit per row (0 with one class)."""
    if logits.shape[1] < 2:
        return np.zeros(logits.shape[0], dtype=logits.dtype)
    top2 = np.partition(logits, logits.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _softmax_inplace(z: np.ndarray) -> np.ndarray:
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _validate(embeddings: np.ndarray, labels: np.ndarray, num_classes: int, text_head: np.ndarray | None,
              center: np.ndarray | None) -> None:
    if num_classes < 1:
        raise InvalidInput(f"num_classes: must be >= 1, got {num_classes}")
    if embeddings.ndim != 2:
        raise InvalidInput(f"embeddings: expected N x D, got shape {embeddings.shape}")
    if labels.shape != (embeddings.shape[0],):
        raise InvalidInput(f"labels: expected shape ({embeddings.shape[0]},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise InvalidInput(f"labels: must lie in 0..{num_classes - 1}")
    if not np.all(np.isfinite(embeddings)):
        raise InvalidInput("embeddings: must be finite")
    if text_head is not None and text_head.shape != (num_classes, embeddings.shape[1]):
        raise InvalidInput(f"text_head: expected shape ({num_classes}, {embeddings.shape[1]}), "
                           f"got {text_head.shape}")
    if center is not None and (center.shape != (embeddings.shape[1],) or not np.all(np.isfinite(center))):
        raise InvalidInput(f"center: expected {embeddings.shape[1]} finite values, got shape {center.shape}")


def fit_classifier(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    text_head: np.ndarray | None,
    logit_scale: float = 100.0,
    rng: np.random.Generator,
    center: np.ndarray | None = None,
    expected_accuracy: float | None = None,
) -> Classifier:
    """Fit on the labeled items. With no labels: zero-shot ("zero-shot") or uniform ("cold").

    `center`: mean embedding of the whole collection (defaults to the labeled items' mean).
    `expected_accuracy`: zero-shot's expected accuracy on the collection (e.g. its mean confidence on
    the unlabeled pool): the held-out folds then weigh labels where zero-shot was right and wrong to
    that mix, undoing the selection bias of a label set rich in errors (see `_fold_weights`)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64, copy=False)
    head = None if text_head is None else np.asarray(text_head, dtype=np.float32)
    mean = None if center is None else np.asarray(center, dtype=np.float32)
    if emb.ndim == 2 and emb.shape[0] == 0 and head is not None:
        emb = emb.reshape(0, head.shape[1])
    _validate(emb, y, num_classes, head, mean)
    version = "zero-shot" if head is not None else "cold"
    unadapted = Classifier(head, float(logit_scale), num_classes, None, None, version, int(y.size), None, None, None)
    if y.size == 0:
        return unadapted
    # One BLAS thread for the fit's small matmuls: waking a second thread for each costs more than it
    # saves (fits measured 5x slower with 2 threads on 2 cores). The limit is process-wide while it holds.
    with threadpool_limits(limits=1, user_api="blas"):
        return _adapt(unadapted, emb, y, mu=emb.mean(axis=0) if mean is None else mean, rng=rng,
                      expected_accuracy=expected_accuracy)


def _adapt(unadapted: Classifier, emb: np.ndarray, y: np.ndarray, *, mu: np.ndarray,
           rng: np.random.Generator, expected_accuracy: float | None = None) -> Classifier:
    """Choose the penalty on held-out folds, fit the probe, and gate it (see the module docstring)."""
    head, k = unadapted.text_head, unadapted.num_classes
    features, basis = _basis(emb - mu)
    z_full = _zero_shot_logits(emb, head, unadapted.logit_scale, k)
    gaps = top_gap(z_full) if head is not None else np.zeros(y.size, dtype=np.float32)
    active, z0, y_active = _restrict(z_full, y, cold=head is None)
    gate = np.inf if head is None else wrong_gap_gate(gaps, np.argmax(z_full, axis=1) != y)
    if gate == -np.inf:  # zero-shot is right on every label: nothing to correct
        return unadapted
    penalty, cv_acc, zs_acc = _choose_penalty(features, y_active, z0, gaps, rng=rng, cold=head is None,
                                              expected_accuracy=expected_accuracy,
                                              trainable=active.size)
    if penalty is None:
        return replace(unadapted, cv_accuracy=cv_acc, cv_zero_shot_accuracy=zs_acc)
    coef = _fit_probe(features, y_active, z0, penalty=penalty, iterations=ITERATIONS,
                      curvature=_curvature(features), trainable=active.size)
    delta = np.ascontiguousarray(basis @ coef[:, : active.size], dtype=np.float32)
    if 2 * active.size > k:  # mostly active: a full D x K matmul beats column gathers
        full = np.zeros((emb.shape[1], k), dtype=np.float32)
        full[:, active] = delta
        active, delta = np.arange(k), full
    return replace(unadapted, weights=delta, offset=-(mu @ delta).astype(np.float32), classes=active, gate=gate,
                   version=f"adapted-n{y.size}", penalty=penalty, cv_accuracy=cv_acc, cv_zero_shot_accuracy=zs_acc)


def _restrict(z0: np.ndarray, y: np.ndarray, *, cold: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes the probe may move: the labeled ones and each labeled item's top zero-shot guesses.

    The others keep Delta = 0; their softmax mass enters as one fixed last column (their
    logsumexp), so the loss over the kept classes is exact. Returns (active ids, logits, labels).
    """
    k = z0.shape[1]
    top = min(ACTIVE_TOP, k)
    guesses = np.argpartition(-z0, top - 1, axis=1)[:, :top].ravel() if not cold else np.zeros(0, dtype=np.int64)
    active = np.union1d(y, guesses).astype(np.int64)
    position = np.full(k, -1, dtype=np.int64)
    position[active] = np.arange(active.size)
    if active.size == k:
        return active, z0, position[y]
    rest = np.setdiff1d(np.arange(k), active)
    peak = z0[:, rest].max(axis=1, keepdims=True)
    other = peak + np.log(np.exp(z0[:, rest] - peak).sum(axis=1, keepdims=True))
    return active, np.concatenate([z0[:, active], other], axis=1).astype(np.float32), position[y]


def _zero_shot_logits(emb: np.ndarray, head: np.ndarray | None, scale: float, k: int) -> np.ndarray:
    if head is None:
        return np.zeros((emb.shape[0], k), dtype=np.float32)
    return (scale * (emb @ head.T)).astype(np.float32)


def _basis(centered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features in the top-r principal basis of the centered labeled items (n x r), and the basis."""
    n, d = centered.shape
    x = centered.astype(np.float64)
    if n <= d:
        values, vectors = np.linalg.eigh(x @ x.T)
        basis_full = x.T @ vectors / np.sqrt(np.maximum(values, 1e-30))
    else:
        values, basis_full = np.linalg.eigh(x.T @ x)
    order = np.argsort(values)[::-1]
    keep = order[values[order] > max(values.max(initial=0.0), 1e-30) * 1e-8][:MAX_RANK]
    basis = basis_full[:, keep].astype(np.float32)
    return centered @ basis, basis


def _curvature(features: np.ndarray) -> np.ndarray:
    """diag(F'F): all of F'F in the principal basis, and a bound for any subset of the rows."""
    return np.einsum("ij,ij->j", features, features)


def _fit_probe(features: np.ndarray, y: np.ndarray, z0: np.ndarray, *, penalty: float, iterations: int,
               curvature: np.ndarray, trainable: int, start: np.ndarray | None = None) -> np.ndarray:
    """Minimise sum CE(z0 + F C, y) + penalty/2 ||C||^2 (more labels weigh more against the prior).

    Preconditioned by Boehning's Hessian bound `0.5 diag(curvature) + penalty` (a majoriser, since
    `curvature` bounds F'F), with Nesterov momentum. Columns from `trainable` on stay 0.
    """
    n, r = features.shape
    k = z0.shape[1]
    onehot = np.zeros((n, k), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    penalty = penalty / n
    step = (1.0 / (0.5 * curvature / n + penalty)).astype(np.float32)[:, None]
    step = np.repeat(step, k, axis=1)
    step[:, trainable:] = 0.0
    coef = np.zeros((r, k), dtype=np.float32) if start is None else start.copy()
    previous = coef
    for it in range(iterations):
        look = coef + (it / (it + 3.0)) * (coef - previous)
        grad = features.T @ (_softmax_inplace(z0 + features @ look) - onehot) / n + penalty * look
        previous, coef = coef, look - step * grad
    return coef


def stratified_folds(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fold id per item, classes spread over folds (stratified-ish)."""
    count = min(MAX_FOLDS, y.size)
    order = rng.permutation(y.size)
    order = order[np.argsort(y[order], kind="stable")]
    fold = np.empty(y.size, dtype=np.int64)
    fold[order] = np.arange(y.size) % count
    return fold


def wrong_gap_gate(gaps: np.ndarray, zero_shot_wrong: np.ndarray) -> float:
    """The largest zero-shot gap at which zero-shot was seen to be wrong (-inf: never wrong)."""
    return float(gaps[zero_shot_wrong].max()) if zero_shot_wrong.any() else -np.inf


def _choose_penalty(features: np.ndarray, y: np.ndarray, z0: np.ndarray, gaps: np.ndarray, *,
                    rng: np.random.Generator, cold: bool, trainable: int,
                    expected_accuracy: float | None = None) -> tuple[float | None, float | None, float | None]:
    """Penalty with the best held-out accuracy (log-loss breaks ties), or None to keep zero-shot.

    Zero-shot is kept unless the probe wins clearly on the held-out folds: with `wins` items it gets
    right and zero-shot wrong, and `losses` the reverse, a paired (McNemar-style) test asks
    `wins - losses > SIGNIFICANCE * sqrt(wins + losses)`.
    Returns (penalty, its held-out accuracy, zero-shot held-out accuracy).
    """
    grid = PENALTIES_COLD if cold else PENALTIES_HEAD
    if y.size < 2:
        return (grid[0] if cold else None), None, None
    fold, curvature = stratified_folds(y, rng), _curvature(features)
    zs_right = np.argmax(z0[:, :trainable], axis=1) == y  # the last column may be the fixed "others"
    right = np.zeros((len(grid), y.size), dtype=bool)
    loss = np.zeros(len(grid))
    for f in range(fold.max() + 1):
        train, test = fold != f, fold == f
        gated = np.ones(int(test.sum()), dtype=np.float32)
        if not cold:
            gated[gaps[test] > wrong_gap_gate(gaps[train], ~zs_right[train])] = 0.0
        coef = None
        for i, penalty in enumerate(grid):
            coef = _fit_probe(features[train], y[train], z0[train], penalty=penalty,
                              iterations=CV_ITERATIONS if coef is None else CV_ITERATIONS // 2,
                              curvature=curvature, trainable=trainable, start=coef)
            logits = z0[test] + gated[:, None] * (features[test] @ coef)
            right[i, test] = np.argmax(logits[:, :trainable], axis=1) == y[test]
            loss[i] += float(_cross_entropy(logits, y[test]).sum())
    weight = fold_weights(zs_right, expected_accuracy) if not cold else np.ones(y.size)
    best = int(np.lexsort((loss, -(right @ weight)))[0])
    cv_acc = float(right[best] @ weight / weight.sum())
    if cold:
        return grid[best], cv_acc, None
    helps = clearly_better(right[best], zs_right, weight)
    return (grid[best] if helps else None), cv_acc, float(zs_right @ weight / weight.sum())


def fold_weights(zs_right: np.ndarray, expected_accuracy: float | None) -> np.ndarray:
    """Weights that give the held-out labels zero-shot's expected accuracy on the collection.

    Uncertainty and error-seeking selection label mostly images zero-shot gets wrong, where any probe
    looks good; weighing the two strata (zero-shot right / wrong) to the collection's mix estimates
    what the probe does to the unlabeled pool. None: unweighted."""
    if expected_accuracy is None or zs_right.all() or not zs_right.any():
        return np.ones(zs_right.size)
    share = float(zs_right.mean())
    return np.where(zs_right, expected_accuracy / share, (1.0 - expected_accuracy) / (1.0 - share))


def clearly_better(right: np.ndarray, baseline_right: np.ndarray, weight: np.ndarray) -> bool:
    """Paired (McNemar-style) test on weighted items: wins - losses > SIGNIFICANCE * sqrt(sum w^2)."""
    wins, losses = right & ~baseline_right, baseline_right & ~right
    spread = np.sqrt(float(weight[wins] @ weight[wins] + weight[losses] @ weight[losses]))
    return float(weight[wins].sum() - weight[losses].sum()) > SIGNIFICANCE * spread


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(y.size), y]
