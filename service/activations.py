"""Numerically stable activations over the class axis, pure numpy, float32 in and out.

Conventions (documented in ``docs/numerics.md``):

* ``softmax``/``log_softmax`` shift by the row maximum, so no finite input overflows
  (|x| up to float32's 3.4e38). Entries equal to the row maximum are shifted to exactly 0,
  which gives every row a defined value: a row that is entirely ``-inf`` becomes the uniform
  distribution (all entries are "equal"), and ``+inf`` entries share the whole mass equally.
* ``NaN`` in the input propagates to the output row; callers validate before calling.
* ``temperature`` divides the *shifted* logits, so a small temperature cannot overflow either.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInputError

__all__ = [
    "Activation",
    "log_sigmoid",
    "log_softmax",
    "normalized_logits",
    "sigmoid",
    "softmax",
]

FloatArray = npt.NDArray[np.float32]


class Activation(StrEnum):
    """What a prediction may return besides the logits."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"
    LOG_SOFTMAX = "log_softmax"
    NONE = "none"

    @property
    def scores_name(self) -> str | None:
        """What the activated scores are called: ``probabilities``, ``log_probabilities``, or
        ``None`` when there are none."""
        if self is Activation.NONE:
            return None
        return "log_probabilities" if self is Activation.LOG_SOFTMAX else "probabilities"

    def apply(self, logits: FloatArray, temperature: float = 1.0) -> FloatArray | None:
        """The activated scores of ``logits / temperature`` (``None`` for ``none``)."""
        if self is Activation.SOFTMAX:
            return softmax(logits, temperature=temperature)
        if self is Activation.LOG_SOFTMAX:
            return log_softmax(logits, temperature=temperature)
        if self is Activation.SIGMOID:
            return sigmoid(logits if temperature == 1 else logits / np.float32(temperature))
        return None


def _as_float32(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float32)


def _shifted(x: FloatArray, axis: int, temperature: float) -> FloatArray:
    """``(x - max(x)) / temperature`` with the row maximum mapped to exactly 0."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise InvalidInputError(
            f"temperature must be a finite number > 0, got {temperature!r}", field="temperature"
        )
    peak = np.max(x, axis=axis, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        # Subtracting the maximum can overflow to -inf for spreads beyond float32's range,
        # which exp() maps to 0 as intended; ``where`` removes the inf - inf of ±inf peaks.
        shifted = np.where(x == peak, np.float32(0), x - peak)
    if temperature != 1.0:
        with np.errstate(over="ignore"):
            shifted /= np.float32(temperature)
    return shifted


def softmax(x: npt.ArrayLike, axis: int = -1, temperature: float = 1.0) -> FloatArray:
    """Softmax of ``x / temperature`` along ``axis``; each row is a probability distribution."""
    shifted = _shifted(_as_float32(x), axis, temperature)
    np.exp(shifted, out=shifted)
    shifted /= np.sum(shifted, axis=axis, keepdims=True)
    return shifted


def log_softmax(x: npt.ArrayLike, axis: int = -1, temperature: float = 1.0) -> FloatArray:
    """Log of :func:`softmax`, computed as ``shifted - log(sum(exp(shifted)))``: never ``log(0)``,
    so the result is finite unless the true value lies beyond float32's range (a spread
    between two logits of more than 3.4e38 gives ``-inf``)."""
    shifted = _shifted(_as_float32(x), axis, temperature)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def sigmoid(x: npt.ArrayLike) -> FloatArray:
    """Logistic sigmoid, evaluated without overflow and with full relative precision in both
    tails: ``exp(min(x, 0)) / (exp(min(x, 0)) + exp(-max(x, 0)))``."""
    p, _ = sigmoid_pair(x)
    return p


def sigmoid_pair(x: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """``(sigmoid(x), 1 - sigmoid(x))``, each accurate to full relative precision (the
    complement is ``sigmoid(-x)``, not a subtraction that cancels)."""
    x = _as_float32(x)
    # Branch-free on purpose: np.where over a data-dependent mask is many times slower.
    positive_part = np.exp(np.minimum(x, 0))
    negative_part = np.maximum(x, 0)
    np.negative(negative_part, out=negative_part)
    np.exp(negative_part, out=negative_part)
    total = positive_part + negative_part
    positive_part /= total
    negative_part /= total
    return positive_part, negative_part


def log_sigmoid(x: npt.ArrayLike) -> FloatArray:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``: finite for every finite input."""
    x = _as_float32(x)
    return np.minimum(x, 0) - softplus_of_negative_abs(x)


def softplus_of_negative_abs(x: FloatArray) -> FloatArray:
    """``log1p(exp(-|x|))``, the smooth part of every log-sigmoid form, in one buffer."""
    buffer = np.abs(x)
    np.negative(buffer, out=buffer)
    np.exp(buffer, out=buffer)
    np.log1p(buffer, out=buffer)
    return buffer


def normalized_logits(x: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """The *unstable* baseline from the article that motivated this project: shift each row by
    its minimum, then divide by the row sum.

    Kept only for comparison with :func:`softmax`. It is not a probability model of the logits
    (it is not invariant to scale, and a logit equal to the minimum always gets probability 0),
    and a spread beyond float32's range overflows to ``NaN``. A constant row, where the sum is
    zero, is given the uniform distribution rather than ``0/0``.
    """
    x = _as_float32(x)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = x - np.min(x, axis=axis, keepdims=True)
        total = np.sum(shifted, axis=axis, keepdims=True)
        uniform = np.float32(1.0 / x.shape[axis])
        return np.where(total == 0, uniform, shifted / np.where(total == 0, 1, total)).astype(
            np.float32, copy=False
        )
