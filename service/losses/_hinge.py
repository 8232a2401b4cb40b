"""Hinge losses with Keras semantics, applied to the scores as given (no activation).

If every label in the batch is 0 or 1, ``hinge`` and ``squared_hinge`` first map them to ±1
(Keras's ``convert_binary_labels_to_hinge``, applied to the whole batch by
:func:`signed_labels` before the kernels run); otherwise labels are used as they are, so −1/1
labels work directly. ``from_logits`` is ignored: the scores are used as given.
``categorical_hinge`` is ``max(max((1 − y)·ŷ) − Σ y·ŷ + 1, 0)``.

Subgradients follow TensorFlow's choices at the kinks so that results equal its autodiff:
``maximum(a, b)`` passes the gradient to ``a`` when ``a >= b``; ``max`` over a row splits it
equally among tied entries.
"""

from __future__ import annotations

import numpy as np

from service.losses._inputs import FloatArray, Labels, LossOutput


def signed_labels(y: FloatArray) -> FloatArray:
    """Keras's batch-level rule: labels that are all 0 or 1 become −1/1; others stay."""
    if np.all((y == 0) | (y == 1)):
        return 2 * y - 1
    return y


def hinge(labels: Labels, x: FloatArray, *, from_logits: bool, want_gradient: bool) -> LossOutput:
    """``mean_c max(1 − y·ŷ, 0)``."""
    y = labels.values
    margin = 1 - y * x
    loss = np.mean(np.maximum(margin, 0), axis=1)
    gradient = None
    if want_gradient:
        gradient = (margin >= 0).astype(np.float32)
        gradient *= -y / np.float32(x.shape[1])
    return LossOutput(loss, gradient)


def squared_hinge(
    labels: Labels, x: FloatArray, *, from_logits: bool, want_gradient: bool
) -> LossOutput:
    """``mean_c max(1 − y·ŷ, 0)²``."""
    y = labels.values
    active = np.maximum(1 - y * x, 0)
    with np.errstate(over="ignore"):  # beyond ~1.8e19 the true square exceeds float32: inf
        loss = np.mean(np.square(active), axis=1)
    gradient = None
    if want_gradient:
        gradient = np.multiply(active, y, dtype=np.float32)
        gradient *= np.float32(-2 / x.shape[1])
    return LossOutput(loss, gradient)


def categorical_hinge(
    labels: Labels, x: FloatArray, *, from_logits: bool, want_gradient: bool
) -> LossOutput:
    """``max(max_c (1 − y_c) ŷ_c − Σ_c y_c ŷ_c + 1, 0)``."""
    y = labels.values
    others = (1 - y) * x
    neg = others.max(axis=1, keepdims=True)
    margin = neg[:, 0] - np.sum(y * x, axis=1) + 1
    loss = np.maximum(margin, 0)
    gradient = None
    if want_gradient:
        ties = (others == neg).astype(np.float32)
        d_neg = (1 - y) * ties / ties.sum(axis=1, keepdims=True)
        gradient = np.where((margin >= 0)[:, None], d_neg - y, 0).astype(np.float32)
    return LossOutput(loss, gradient)
