"""Temperature scaling: fit it from labelled logits, measure it, store it beside a version.

* :mod:`~service.calibration.temperature` — the exact NLL fit of one temperature, from sums
  over chunks of rows (so it runs chunked and on any engine, and equals a one-batch fit).
* :mod:`~service.calibration.quality` — NLL, ECE, Brier score and accuracy, as chunk sums.
* :mod:`~service.calibration.file` — ``calibration.json`` in a version folder: read, validated,
  written atomically.
"""

from service.calibration.file import (
    CALIBRATION_FILE,
    Calibration,
    CalibrationFileError,
    read_calibration,
    write_calibration,
)
from service.calibration.quality import Quality, QualitySums
from service.calibration.temperature import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    NllTerms,
    TemperatureFit,
    fit_temperature,
    nll_terms,
)

__all__ = [
    "CALIBRATION_FILE",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "Calibration",
    "CalibrationFileError",
    "NllTerms",
    "Quality",
    "QualitySums",
    "TemperatureFit",
    "fit_temperature",
    "nll_terms",
    "read_calibration",
    "write_calibration",
]
