"""``--fit-temperature``: temperature scaling fitted on the fit rows of an evaluation's kept
outputs, measured on the others, and stored as the version's ``calibration.json``.

The fit and the "before" figures use the raw logits (T = 1), whatever temperature the
evaluation itself applied (``--calibrated``). Dividing the logits by a positive T does not
change their argmax, so the accuracy before and after is the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.calibration import (
    CALIBRATION_FILE,
    Calibration,
    QualitySums,
    TemperatureFit,
    fit_temperature,
    write_calibration,
)
from service.calibration.file import file_sha256
from service.evaluate.errors import EvaluationError
from service.evaluate.models import LocalModel
from service.evaluate.outputs import ChunkOutputs, RowSplit
from service.evaluate.report import reliability_table
from service.evaluate.runner import Evaluation

__all__ = ["FittedCalibration", "fit_calibration", "store_calibration"]

Side = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]


@dataclass(frozen=True)
class FittedCalibration:
    """A fitted temperature, and its figures on the measure rows before (T = 1) and after."""

    fit: TemperatureFit
    split: RowSplit
    fitted_on: dict[str, Any]
    measured_on: dict[str, Any]
    before: QualitySums
    after: QualitySums
    """The measure rows' sums (figures and 15 reliability bins) at T = 1 and at the fitted T."""

    def record(self, model_sha256: str | None) -> Calibration:
        """What ``calibration.json`` holds."""
        return Calibration(
            format=1,
            temperature=self.fit.temperature,
            model_sha256=model_sha256,
            fitted_on=self.fitted_on,
            measured_on=self.measured_on,
            before=self.before.quality().figures(),
            after=self.after.quality().figures(),
            iterations=self.fit.iterations,
        )

    def section(self, written_to: Path | None, not_written: str | None) -> dict[str, Any]:
        """``report.json``'s ``calibration`` object."""
        return {
            "method": "temperature_scaling",
            "temperature": self.fit.temperature,
            "iterations": self.fit.iterations,
            "converged": self.fit.converged,
            "at_bound": self.fit.at_bound,
            "fitted_on": self.fitted_on,
            "measured_on": self.measured_on,
            "same_rows": self.split.same_rows,
            "before": {"temperature": 1.0} | self.before.quality().to_dict(),
            "after": {"temperature": self.fit.temperature} | self.after.quality().to_dict(),
            "reliability": {
                "before": reliability_table(self.before),
                "after": reliability_table(self.after),
            },
            "written_to": None if written_to is None else str(written_to),
            "not_written": not_written,
        }


def _sides(outputs: tuple[ChunkOutputs, ...], split: RowSplit, fitted: bool) -> Iterator[Side]:
    for chunk in outputs:
        logits, labels = chunk.side(split, fitted)
        if len(labels):
            yield logits, labels


def fit_calibration(evaluation: Evaluation, split: RowSplit) -> FittedCalibration:
    """Fit T on the fit rows of ``evaluation.outputs`` (chunk by chunk, as the engine returned
    them) and measure T = 1 and the fitted T on the measure rows."""
    outputs = evaluation.outputs
    if not outputs:
        raise EvaluationError("no outputs were kept: the job must keep outputs to fit")
    try:
        fit = fit_temperature(lambda: _sides(outputs, split, True))
        before, after = QualitySums.zeros(), QualitySums.zeros()
        for logits, labels in _sides(outputs, split, False):
            before = before + QualitySums.of(logits, labels, 1.0)
            after = after + QualitySums.of(logits, labels, fit.temperature)
    except ValueError as exc:  # e.g. logits that are not finite
        raise EvaluationError(f"cannot fit a temperature: {exc}") from None
    dataset = {k: evaluation.dataset[k] for k in ("name", "source", "split")}
    fitted_on = dataset | {
        "rows": fit.rows, "calibration_split": split.fraction, "split_seed": split.seed,
    }  # fmt: skip
    measured_on = dataset | {"rows": before.rows, "same_rows": split.same_rows}
    return FittedCalibration(fit, split, fitted_on, measured_on, before, after)


def store_calibration(fitted: FittedCalibration, model: LocalModel) -> Path:
    """Write ``calibration.json`` beside the evaluated ``model.onnx``; its path."""
    onnx = Path(model.path)
    folder = onnx.parent
    try:
        sha256 = file_sha256(onnx)
    except OSError as exc:
        raise EvaluationError(f"{onnx}: cannot be read ({exc.strerror})") from None
    if sha256 != hashlib.sha256(model.onnx).hexdigest():
        raise EvaluationError(
            f"{onnx} changed during the evaluation: {CALIBRATION_FILE} not written (run again)"
        )
    try:
        return write_calibration(folder, fitted.record(sha256))
    except OSError as exc:
        raise EvaluationError(
            f"{folder / CALIBRATION_FILE}: cannot be written ({exc.strerror or exc}); "
            "--no-write-calibration skips it"
        ) from None
