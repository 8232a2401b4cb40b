"""Keras's weighting and reduction of per-sample losses, plus the matching gradient scale.

Follows ``keras/src/losses/loss.py`` (``reduce_weighted_values``, ``apply_mask``,
``reduce_values``): per-sample losses are multiplied by the sample weights first; an
``ignore_class`` mask becomes a weight of ``N / valid`` (mean reductions) or 1 on the rows that
count and 0 elsewhere; then the values are summed and divided by ``N`` (``sum_over_batch_size``
and its alias ``mean``) or by the sum of the weights (``mean_with_sample_weight``), with a zero
divisor giving 0 as in ``divide_no_nan``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from service.errors import InvalidInputError
from service.losses._inputs import BoolArray, FloatArray

REDUCTIONS = ("none", "sum", "sum_over_batch_size", "mean", "mean_with_sample_weight")
"""Accepted reduction names, as in Keras."""


class Reduced(NamedTuple):
    value: float | FloatArray
    """The reduced loss (a float), or the weighted per-sample losses for ``"none"``."""
    per_sample: FloatArray
    """Per-sample losses after weighting (what Keras returns for ``"none"``)."""
    scale: FloatArray
    """d value / d (unweighted per-sample loss), one entry per sample; for ``"none"`` the
    derivative of each sample's own weighted loss."""


def check_reduction(reduction: str) -> None:
    """Raise :class:`InvalidInputError` unless ``reduction`` is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise InvalidInputError(
            f"unknown reduction {reduction!r}; expected one of {', '.join(REDUCTIONS)}",
            field="reduction",
        )


def _effective_weights(
    weights: FloatArray | None, mask: BoolArray | None, reduction: str
) -> FloatArray | None:
    if mask is None:
        return weights
    if reduction in ("mean", "sum_over_batch_size"):
        valid = np.float32(mask.sum())
        per_valid = np.float32(mask.size) / valid if valid else np.float32(0)
        float_mask = np.where(mask, per_valid, np.float32(0)).astype(np.float32)
    else:
        float_mask = mask.astype(np.float32)
    return float_mask if weights is None else weights * float_mask


def reduce(
    losses: FloatArray, weights: FloatArray | None, mask: BoolArray | None, reduction: str
) -> Reduced:
    """Weight ``losses`` (shape ``[N]``) and reduce them the way a Keras ``Loss`` does."""
    check_reduction(reduction)
    effective = _effective_weights(weights, mask, reduction)
    values = losses if effective is None else losses * effective
    ones = np.ones_like(losses)
    scale = ones if effective is None else effective
    if reduction == "none":
        return Reduced(values, values, scale)
    total = np.sum(values, dtype=np.float32)
    if reduction == "sum":
        return Reduced(float(total), values, scale)
    if reduction == "mean_with_sample_weight" and effective is not None:
        divisor = np.sum(effective, dtype=np.float32)
    else:
        divisor = np.float32(losses.size)
    if divisor == 0:
        return Reduced(0.0, values, np.zeros_like(losses))
    return Reduced(float(total / divisor), values, scale / divisor)
