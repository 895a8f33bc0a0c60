"""Error-seeking weights: where is the model's prediction likely wrong, beyond its own margin?

Two signals, multiplied into the margin score:

- Disagreement of two views (query by committee): the context's `view`, class means in image space
  estimated from the labels and the pool, gives `1 - q(predicted class)`, the image view's
  probability that the model's prediction is wrong. The text head and image-space neighbours err
  differently, so where they disagree errors concentrate (on Pets, 18 of the 30 top-scored images
  are zero-shot errors against 10 by margin alone). Only with a text head: in a cold start the
  model is itself class means, and there is no second view.
- Corrections per class:
For each class c, over the labeled images the model predicted as c (before their label counted):
`ratio_c = (errors_c + PRIOR) / (expected_c + PRIOR)`, with `errors_c` the corrections and
`expected_c = sum(1 - confidence)` the errors the model's probabilities expected there. A ratio above
1 marks a class whose predictions are worse than they look (a weak prompt, a confused pair); PRIOR
(in expected errors) shrinks classes with few labels toward 1. A candidate's weight is the larger
ratio of its top-2 classes: an image the model hesitates on between a class it over-trusts and
another is the likeliest error.
"""

from __future__ import annotations

import numpy as np

from core.labeling.context import LabeledContext

PRIOR = 1.0
DISAGREE_FLOOR = 0.02  # where both views agree, the margin still orders the candidates


def class_error_ratio(context: LabeledContext) -> np.ndarray:
    """K ratios of observed to expected errors among each predicted class (1 with no evidence)."""
    k = context.num_classes
    errors = np.bincount(context.predicted[context.corrected], minlength=k).astype(np.float64)
    expected = np.bincount(context.predicted, weights=1.0 - context.confidence, minlength=k)
    return (errors + PRIOR) / (expected + PRIOR)


def error_weights(probs: np.ndarray, embeddings: np.ndarray, context: LabeledContext | None) -> np.ndarray:
    """Per candidate: view disagreement (+ DISAGREE_FLOOR) x the larger error ratio of its top-2 classes."""
    weights = np.ones(probs.shape[0])
    if context is None or probs.shape[1] < 2:
        return weights
    if context.view is not None and context.has_text_head:  # in a cold start the model is class means too
        predicted = np.argmax(probs, axis=1)
        q = np.exp(context.view.log_probs(embeddings)[np.arange(probs.shape[0]), predicted])
        weights *= 1.0 - q + DISAGREE_FLOOR
    if context.corrected.any():
        ratio = class_error_ratio(context)
        top2 = np.argpartition(-probs, 1, axis=1)[:, :2]
        weights *= np.maximum(ratio[top2[:, 0]], ratio[top2[:, 1]])
    return weights
