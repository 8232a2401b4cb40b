"""Cross-entropy kernels: categorical, sparse categorical and binary.

From logits the math is exact and never clipped (log-sum-exp with a max shift, and
``max(x, 0) - x*y + log1p(exp(-|x|))`` for the binary case), matching TensorFlow's fused
kernels. From probabilities Keras's convention is kept: clip to [ε, 1 − ε] before the log,
after renormalising each row for the categorical case.

Kernels see validated labels and a block of rows; they may run on several blocks at once.
"""

from __future__ import annotations

import numpy as np

from service.activations import sigmoid, softplus_of_negative_abs
from service.losses._inputs import EPSILON, FloatArray, Labels, LossOutput


def shifted_exp(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``x - max(x)`` per row and ``exp`` of it (a spread beyond float32's range becomes
    ``-inf``/0, which is the correctly rounded limit)."""
    with np.errstate(over="ignore"):
        shifted = x - x.max(axis=1, keepdims=True)
    return shifted, np.exp(shifted)


def sigmoid_cross_entropy(x: FloatArray, y: FloatArray) -> FloatArray:
    """Element-wise ``-[y log σ(x) + (1-y) log(1-σ(x))]`` in TensorFlow's exact logit form
    ``(max(x, 0) - x y) + log1p(exp(-|x|))`` (same order, so a confident correct prediction
    keeps its tiny loss instead of rounding it away)."""
    loss = np.maximum(x, 0)
    with np.errstate(over="ignore"):
        loss -= x * y
    loss += softplus_of_negative_abs(x)
    return loss


def clipped(p: FloatArray) -> FloatArray:
    """Probabilities clipped to [ε, 1 − ε] as Keras does before taking a log."""
    return np.clip(p, EPSILON, np.float32(1) - EPSILON)


def renormalized(p: FloatArray) -> FloatArray:
    """Each probability row divided by its sum, as Keras does for categorical losses
    (rows summing to 0 are rejected before any kernel runs)."""
    normalized: FloatArray = p / p.sum(axis=1, keepdims=True)
    return normalized


def smooth_categorical(y: FloatArray, label_smoothing: float) -> FloatArray:
    """Keras's categorical smoothing ``y (1 − ls) + ls / C``."""
    if not label_smoothing:
        return y
    return y * np.float32(1 - label_smoothing) + np.float32(label_smoothing) / np.float32(
        y.shape[1]
    )


def smooth_binary(y: FloatArray, label_smoothing: float) -> FloatArray:
    """Keras's binary smoothing ``y (1 − ls) + 0.5 ls``."""
    if not label_smoothing:
        return y
    return y * np.float32(1 - label_smoothing) + np.float32(0.5 * label_smoothing)


def categorical_crossentropy(
    labels: Labels,
    x: FloatArray,
    *,
    from_logits: bool,
    want_gradient: bool,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """``-Σ_c y_c log p_c`` per sample."""
    y = smooth_categorical(labels.values, label_smoothing)
    if not from_logits:
        return LossOutput(-np.sum(y * np.log(clipped(renormalized(x))), axis=1), None)
    shifted, exp = shifted_exp(x)
    total = exp.sum(axis=1, keepdims=True)
    loss = np.sum(y * (np.log(total) - shifted), axis=1)
    # The true derivative, (Σy)·softmax − y; it is softmax − y whenever the labels sum to 1.
    gradient = exp / total * y.sum(axis=1, keepdims=True) - y if want_gradient else None
    return LossOutput(loss, gradient)


def sparse_categorical_crossentropy(
    labels: Labels, x: FloatArray, *, from_logits: bool, want_gradient: bool
) -> LossOutput:
    """``logsumexp(x) − x[label]`` per sample; rows masked by ``ignore_class`` count as 0."""
    ids, valid = labels.values, labels.mask
    if not from_logits:
        x = np.log(clipped(x))
    if valid is not None:
        x = np.where(valid[:, None], x, np.float32(0))
    rows = np.arange(x.shape[0])
    with np.errstate(over="ignore"):
        buffer = x - x.max(axis=1, keepdims=True)
    picked = buffer[rows, ids]
    np.exp(buffer, out=buffer)
    total = buffer.sum(axis=1)
    loss = np.log(total) - picked
    gradient = None
    if want_gradient and from_logits:
        gradient = buffer
        gradient /= total[:, None]
        gradient[rows, ids] -= 1
        if valid is not None:
            gradient[~valid] = 0
    if valid is not None:
        loss = np.where(valid, loss, np.float32(0))
    return LossOutput(loss, gradient)


def binary_crossentropy(
    labels: Labels,
    x: FloatArray,
    *,
    from_logits: bool,
    want_gradient: bool,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Mean over the last axis of the element-wise binary cross-entropy."""
    y = smooth_binary(labels.values, label_smoothing)
    if not from_logits:
        p = clipped(x)
        return LossOutput(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1), None)
    loss = np.mean(sigmoid_cross_entropy(x, y), axis=1)
    gradient = None
    if want_gradient:
        gradient = sigmoid(x)
        gradient -= y
        gradient /= np.float32(x.shape[1])
    return LossOutput(loss, gradient)
