"""Conversion and validation of the arrays a loss is computed from.

Everything a caller can get wrong is checked here, once, and reported as
:class:`~service.errors.InvalidInputError` naming the field and the expectation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInputError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EPSILON = np.float32(1e-7)
"""Keras's fuzz factor: probabilities are clipped to [EPSILON, 1 - EPSILON] before a log."""


@dataclass(frozen=True)
class Predictions:
    """The model outputs a loss is computed from: a float32 ``[N, C]`` matrix."""

    values: FloatArray
    from_logits: bool
    original_shape: tuple[int, ...]
    """Shape as given (``[N]`` is accepted for one-output binary models)."""

    @property
    def num_classes(self) -> int:
        return int(self.values.shape[1])


@dataclass(frozen=True)
class Labels:
    """Validated labels: float32 targets ``[N, C]`` or int64 class ids ``[N]``, as the
    loss's label preparer produced them (each kernel knows which of the two it gets)."""

    values: npt.NDArray[Any]
    mask: BoolArray | None = None
    """Rows that count (``ignore_class``); ``None`` when every row counts."""

    def rows(self, start: int, stop: int) -> Labels:
        """The labels of rows ``start:stop``."""
        mask = None if self.mask is None else self.mask[start:stop]
        return Labels(self.values[start:stop], mask)


class LossOutput(NamedTuple):
    """What one loss kernel computes before weighting and reduction."""

    per_sample: FloatArray
    gradient: FloatArray | None


def numeric_array(
    value: object, field: str, *, kinds: str = "biuf", expected: str = "be numeric"
) -> npt.NDArray[np.generic]:
    """``value`` as an array whose dtype kind is one of ``kinds``; else
    :class:`InvalidInputError` saying ``field`` must ``expected``."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InvalidInputError(
            f"{field} must be a rectangular numeric array", field=field
        ) from exc
    if array.dtype.kind not in kinds:
        raise InvalidInputError(
            f"{field} must {expected}, got values of type {array.dtype}", field=field
        )
    return array


def require_finite(array: npt.NDArray[np.generic], field: str) -> None:
    """Refuse NaN and ±Inf in ``field``."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInputError(f"{field} must be finite (no NaN or Inf)", field=field)


def require_unit_interval(
    array: npt.NDArray[np.floating[Any]], field: str, context: str = ""
) -> None:
    """Refuse values of ``field`` outside [0, 1] (NaN and ±Inf included)."""
    # min/max propagate NaN and expose ±inf, so this one check also proves finiteness.
    low, high = array.min(), array.max()
    if not (low >= 0 and high <= 1):
        require_finite(array, field)
        raise InvalidInputError(f"{field} must lie within [0, 1] {context}".rstrip(), field=field)


def as_predictions(logits: object, probabilities: object) -> Predictions:
    """Validate that exactly one of ``logits``/``probabilities`` is given and return it as
    a finite float32 ``[N, C]`` matrix (probabilities also within [0, 1])."""
    if (logits is None) == (probabilities is None):
        raise InvalidInputError(
            "give exactly one of logits or probabilities", field="logits/probabilities"
        )
    from_logits = logits is not None
    field = "logits" if from_logits else "probabilities"
    raw = numeric_array(logits if from_logits else probabilities, field)
    if raw.ndim not in (1, 2) or raw.size == 0:
        raise InvalidInputError(
            f"{field} must have shape [N, C] (or [N] for one output) with N, C >= 1, "
            f"got shape {list(raw.shape)}",
            field=field,
        )
    values = raw.astype(np.float32, copy=False)
    if from_logits:
        require_finite(values, field)
    else:
        require_unit_interval(values, field)
    original_shape = values.shape
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    return Predictions(values, from_logits, original_shape)


def _class_ids(raw: npt.NDArray[np.generic], num_classes: int, ignore: int | None) -> IntArray:
    if raw.dtype.kind == "f":
        require_finite(raw, "labels")
        if not np.array_equal(raw, np.round(raw)):
            raise InvalidInputError("class-id labels must be integers", field="labels")
        # Beyond int64 the cast below would wrap (with a RuntimeWarning).
        beyond = np.less(raw, -(2.0**63)) | np.greater_equal(raw, 2.0**63)
        if beyond.any():
            raise InvalidInputError(
                f"class-id labels must lie in [0, {num_classes}), got {raw[beyond][0]:g}",
                field="labels",
            )
    ids = raw.astype(np.int64)
    valid = (ids >= 0) & (ids < num_classes)
    if ignore is not None:
        valid |= ids == ignore
    if not valid.all():
        bad = int(ids[~valid][0])
        raise InvalidInputError(
            f"class-id labels must lie in [0, {num_classes}), got {bad}", field="labels"
        )
    return ids


def _check_rows(labels: npt.NDArray[np.generic], predictions: Predictions) -> None:
    n = predictions.values.shape[0]
    if labels.ndim == 0 or labels.shape[0] != n:
        got = labels.shape[0] if labels.ndim else "a scalar"
        raise InvalidInputError(
            f"labels must have one row per prediction ({n}), got {got}", field="labels"
        )


def sparse_labels(labels: object, predictions: Predictions, ignore_class: int | None) -> Labels:
    """Class ids ``[N]`` (``[N, 1]`` accepted) and the mask of rows not equal to
    ``ignore_class`` (``None`` when no class is ignored)."""
    raw = numeric_array(labels, "labels")
    _check_rows(raw, predictions)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise InvalidInputError(
            f"sparse labels must be class ids of shape [N], got shape {list(raw.shape)} "
            "(use categorical_crossentropy for one-hot or soft labels)",
            field="labels",
        )
    ids = _class_ids(raw, predictions.num_classes, ignore_class)
    if ignore_class is None:
        return Labels(ids)
    valid = ids != ignore_class
    return Labels(np.where(valid, ids, 0), valid)


def dense_labels(labels: object, predictions: Predictions, *, unit_interval: bool) -> FloatArray:
    """Labels with the predictions' ``[N, C]`` shape, as float32.

    Class ids ``[N]`` are one-hot encoded when ``C > 1``; a vector ``[N]`` is one column
    when ``C == 1``. ``unit_interval`` requires values within [0, 1] (cross-entropies).
    """
    raw = numeric_array(labels, "labels")
    _check_rows(raw, predictions)
    n, c = predictions.values.shape
    if raw.ndim == 1 and c > 1:
        ids = _class_ids(raw, c, None)
        onehot = np.zeros((n, c), dtype=np.float32)
        onehot[np.arange(n), ids] = 1
        return onehot
    y = raw.astype(np.float32, copy=False).reshape(n, -1) if raw.ndim == 1 else raw
    if y.shape != (n, c):
        raise InvalidInputError(
            f"labels must be class ids [N] or have the predictions' shape {[n, c]}, "
            f"got shape {list(raw.shape)}",
            field="labels",
        )
    y = y.astype(np.float32, copy=False)
    if unit_interval:
        require_unit_interval(y, "labels", "for this loss")
    else:
        require_finite(y, "labels")
    return y


def sample_weights(sample_weight: object, n: int) -> FloatArray | None:
    """``None``, a scalar, ``[N]`` or ``[N, 1]`` non-negative finite weights, as float32 ``[N]``."""
    if sample_weight is None:
        return None
    raw = numeric_array(sample_weight, "sample_weight").astype(np.float32)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim == 0:
        raw = np.full(n, raw, dtype=np.float32)
    if raw.shape != (n,):
        raise InvalidInputError(
            f"sample_weight must be a scalar or have shape [{n}], got shape {list(raw.shape)}",
            field="sample_weight",
        )
    require_finite(raw, "sample_weight")
    if raw.min() < 0:
        raise InvalidInputError("sample_weight must be >= 0", field="sample_weight")
    return raw
