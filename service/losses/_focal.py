"""Focal cross-entropies (Lin et al., 2017) with Keras 3's parameterisation.

Binary: ``mean_c (1 − p_t)^γ · bce · [y α + (1 − y)(1 − α)]`` where the last factor applies only
with ``apply_class_balancing``. Categorical: ``Σ_c α_c (1 − p_c)^γ (−y_c log p_c)``, α always
applied. The derivative of ``(1 − p_t)^γ`` is unbounded at ``p_t = 1`` when ``γ < 1``; its
product with the vanishing other factors has the limit 0, which is what is returned there.

Deviation from Keras, on purpose: Keras computes the categorical focal loss from clipped
probabilities even when given logits (logits ``[−100, 100]`` with label ``[1, 0]`` give 4.03
instead of 50). From logits this module computes the exact value with a log-softmax.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.activations import sigmoid_pair
from service.losses._crossentropy import (
    clipped,
    renormalized,
    shifted_exp,
    sigmoid_cross_entropy,
    smooth_binary,
    smooth_categorical,
)
from service.losses._inputs import FloatArray, Labels, LossOutput


def _safe_ratio(numerator: FloatArray, denominator: FloatArray, limit: float) -> FloatArray:
    """``numerator / denominator`` where the denominator is positive, else ``limit``."""
    positive = denominator > 0
    return np.where(positive, numerator / np.where(positive, denominator, 1), np.float32(limit))


def _power(base: FloatArray, exponent: float) -> FloatArray:
    # The default γ = 2 as a square is several times faster than the generic power.
    return np.square(base) if exponent == 2 else np.power(base, np.float32(exponent))


def binary_focal_crossentropy(
    labels: Labels,
    x: FloatArray,
    *,
    from_logits: bool,
    want_gradient: bool,
    alpha: float = 0.25,
    gamma: float = 2.0,
    apply_class_balancing: bool = False,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Binary focal cross-entropy, per sample (mean over the last axis)."""
    y = smooth_binary(labels.values, label_smoothing)
    if from_logits:
        p, q = sigmoid_pair(x)  # q = 1 − p without cancellation
        bce = sigmoid_cross_entropy(x, y)
        one_minus_pt = y * q + (1 - y) * p
    else:
        p = x
        pc = clipped(p)
        bce = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
        one_minus_pt = 1 - (y * p + (1 - y) * (1 - p))
    modulating = _power(one_minus_pt, gamma)
    focal = modulating * bce
    weight = None
    if apply_class_balancing:
        weight = y * np.float32(alpha) + (1 - y) * np.float32(1 - alpha)
        focal *= weight
    loss = np.mean(focal, axis=1)
    gradient = None
    if want_gradient and from_logits:
        # d/dx (1 − p_t)^γ = γ (1 − p_t)^(γ−1) (1 − 2y) p q, written as γ (1 − p_t)^γ ·
        # [p q / (1 − p_t)] · (1 − 2y) because p q / (1 − p_t) <= max(p, q) stays bounded
        # (and -> 0 where 1 − p_t = 0) while (1 − p_t)^(γ−1) alone overflows for γ < 1.
        bounded = _safe_ratio(p * q, one_minus_pt, 0)
        d_modulating = np.float32(gamma) * modulating * bounded * (1 - 2 * y)
        gradient = modulating * (p - y) + d_modulating * bce
        if weight is not None:
            gradient *= weight
        gradient /= np.float32(x.shape[1])
    return LossOutput(loss, gradient)


def _alpha_vector(alpha: float | npt.ArrayLike, num_classes: int) -> FloatArray:
    return np.broadcast_to(np.asarray(alpha, dtype=np.float32), (num_classes,))


def categorical_focal_crossentropy(
    labels: Labels,
    x: FloatArray,
    *,
    from_logits: bool,
    want_gradient: bool,
    alpha: float | npt.ArrayLike = 0.25,
    gamma: float = 2.0,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Categorical focal cross-entropy, per sample (sum over classes)."""
    y = smooth_categorical(labels.values, label_smoothing)
    a = _alpha_vector(alpha, x.shape[1])
    g = np.float32(gamma)
    if not from_logits:
        p = clipped(renormalized(x))
        focal = np.power(1 - p, g) * a * (-y * np.log(p))
        return LossOutput(focal.sum(axis=1), None)
    shifted, exp = shifted_exp(x)
    total = exp.sum(axis=1, keepdims=True)
    neg_log_p = np.log(total) - shifted
    q = -np.expm1(-neg_log_p)  # 1 − p, exact also where p ≈ 1
    modulating = _power(q, gamma)
    loss = np.sum(a * modulating * y * neg_log_p, axis=1)
    gradient = None
    if want_gradient:
        p = exp / total
        # h_c = p_c ∂L/∂p_c = −α y q^γ (γ p (−log p)/q + 1); (−log p)/q → 1 as p → 1.
        h = -a * y * modulating * (g * p * _safe_ratio(neg_log_p, q, 1.0) + 1)
        gradient = h - p * h.sum(axis=1, keepdims=True)
    return LossOutput(loss, gradient)
