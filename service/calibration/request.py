"""A temperature fitted to one request's labelled rows, with the figures before and after it
(what ``POST /calibrate`` and the gRPC ``Calibrate`` answer; nothing is stored).

Everything a caller can get wrong is checked here and reported as
:class:`~service.errors.InvalidInputError` naming the field and what was expected:

* predictions: logits, or probabilities, of shape ``[N, C]`` with ``N >= 1`` and ``C >= 2``;
  logits finite and within float32's range (what a model gives); probabilities within [0, 1]
  with every row summing to 1 within :data:`PROBABILITY_SUM_TOLERANCE` (a softmax output:
  temperature scaling of a softmax means nothing for independent sigmoid scores). They are
  turned into logits as ``log(max(p, tiny))``; ``softmax`` of those is ``p`` renormalised.
* labels: class ids ``[N]`` (``[N, 1]`` accepted) in ``0..C-1``, one per row; integral floats
  (``2.0``: JSON has one number type) count as integers, booleans do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from service.calibration.quality import Quality, QualitySums
from service.calibration.temperature import TemperatureFit, fit_temperature
from service.errors import InvalidInputError
from service.losses import numeric_array, require_finite, require_unit_interval
from service.repository import ServedModel

__all__ = [
    "PROBABILITY_SUM_TOLERANCE",
    "CalibrationOutcome",
    "calibrate_rows",
    "class_ids",
    "logits_of",
]

PROBABILITY_SUM_TOLERANCE = 1e-3
"""How far a row of probabilities may sum from 1 (float32 softmax rows are within 1e-6)."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
TINY = float(np.finfo(np.float64).tiny)
"""Probabilities of 0 become ``log(TINY)`` (about -708) rather than ``-inf``."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CalibrationOutcome:
    """The fitted temperature, the figures at T = 1 and at the fitted T (on the same rows),
    and the model when it ran."""

    fit: TemperatureFit
    before: Quality
    after: Quality
    model: ServedModel | None = None


def logits_of(values: object, field: str, *, probabilities: bool = False) -> FloatArray:
    """``values`` as float64 logits ``[N, C]``: logits as given, or ``log(max(p, tiny))`` of
    probabilities (``probabilities=True``), after checking them."""
    raw = numeric_array(values, field, kinds="iuf", expected="hold numbers")
    if raw.ndim != 2 or raw.shape[0] < 1 or raw.shape[1] < 2:
        raise InvalidInputError(
            f"{field} must have shape [N, C] with N >= 1 and C >= 2 classes, "
            f"got shape {list(raw.shape)}",
            field=field,
        )
    array = raw.astype(np.float64)
    require_finite(array, field)
    if not probabilities:
        if np.abs(array).max() > FLOAT32_MAX:
            raise InvalidInputError(
                f"{field} must lie within float32's range (|x| <= {FLOAT32_MAX:.7g})", field=field
            )
        return array
    require_unit_interval(array, field)
    sums = array.sum(axis=1)
    off = np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise InvalidInputError(
            f"each row of {field} must sum to 1 (within {PROBABILITY_SUM_TOLERANCE:g}); "
            f"row {row} sums to {sums[row]:.6g}",
            field=field,
        )
    logits: FloatArray = np.log(np.maximum(array, TINY))
    return logits


def class_ids(labels: object, rows: int, classes: int, rows_field: str = "logits") -> IntArray:
    """``labels`` as int64 class ids ``[rows]`` in ``0..classes-1`` (``[rows, 1]`` accepted);
    ``rows_field`` names what the rows are counted in, for messages."""
    raw: npt.NDArray[Any] = numeric_array(
        labels, "labels", kinds="iuf", expected="hold integer class ids"
    )
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise InvalidInputError(
            f"labels must be class ids of shape [N] (or [N, 1]), got shape {list(raw.shape)}",
            field="labels",
        )
    if len(raw) != rows:
        raise InvalidInputError(
            f"labels must hold one class id per row of {rows_field} ({rows}), got {len(raw)}",
            field="labels",
        )
    if raw.dtype.kind == "f":
        integral = np.isfinite(raw) & (raw == np.round(raw))
        if not integral.all():
            bad = raw[~integral][0]
            raise InvalidInputError(
                f"labels must be integer class ids, got {bad:g}", field="labels"
            )
    outside = (raw < 0) | (raw >= classes)  # before the cast: nothing wraps
    if outside.any():
        raise InvalidInputError(
            f"class-id labels must lie in [0, {classes}), got {raw[outside][0]:g}",
            field="labels",
        )
    ids: IntArray = raw.astype(np.int64)
    return ids


def calibrate_rows(
    labels: object,
    predictions: object,
    *,
    field: str = "logits",
    probabilities: bool = False,
) -> CalibrationOutcome:
    """Fit one temperature to ``predictions`` (logits, or ``probabilities``) and class-id
    ``labels``, and measure NLL, ECE, Brier score and accuracy before and after it.

    ``field`` names the predictions in messages (the request field they came from)."""
    logits = logits_of(predictions, field, probabilities=probabilities)
    ids = class_ids(labels, logits.shape[0], logits.shape[1], field)
    fit = fit_temperature(lambda: [(logits, ids)])
    before = QualitySums.of(logits, ids).quality()
    after = QualitySums.of(logits, ids, fit.temperature).quality()
    return CalibrationOutcome(fit, before, after)
