"""Calibration figures as exact sums over chunks: NLL, ECE (15 bins), Brier score, accuracy.

Probabilities are what the service serves, ``softmax(logits, temperature=T)`` of
:mod:`service.activations`, and the confidence bins follow :meth:`Tally.of
<service.evaluate.metrics.Tally.of>`, so at T = 1 the ECE and accuracy equal the evaluation
report's exactly. The NLL is computed apart, in float64 from the logits, so it stays exact
for huge logits and equals :func:`~service.calibration.temperature.nll_terms` at β = 1/T.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from service.activations import softmax
from service.calibration.temperature import check_rows
from service.evaluate.metrics import ECE_BINS, confidence_bins

__all__ = ["Quality", "QualitySums"]


@dataclass(frozen=True)
class Quality:
    """The calibration figures of a set of rows (means over rows)."""

    rows: int
    nll: float
    ece: float
    brier: float
    accuracy: float
    mean_confidence: float

    def to_dict(self) -> dict[str, float | int]:
        """The figures by name (what reports and responses carry)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def figures(self) -> dict[str, float]:
        """The five figures without the row count (what a response's ``before`` / ``after``
        carry)."""
        return {k: float(v) for k, v in self.to_dict().items() if k != "rows"}


@dataclass(frozen=True, eq=False)
class QualitySums:
    """Sums over rows that :meth:`quality` turns into :class:`Quality`; chunks add up.

    Bin b holds the rows whose confidence (top probability) lies in (b/15, (b+1)/15].
    """

    rows: int
    nll: float
    """Σ −log p_y."""
    brier: float
    """Σ Σ_k (p_k − [k = y])²."""
    correct: int
    """Rows whose top-1 class is the label."""
    confidence: float
    """Σ of the top probability."""
    bin_rows: npt.NDArray[np.int64]
    bin_correct: npt.NDArray[np.int64]
    bin_confidence: npt.NDArray[np.float64]

    @classmethod
    def zeros(cls) -> QualitySums:
        """The sums of no rows."""
        bins = np.zeros(ECE_BINS, np.int64)
        return cls(0, 0.0, 0.0, 0, 0.0, bins, bins.copy(), np.zeros(ECE_BINS))

    @classmethod
    def of(
        cls,
        logits: npt.NDArray[np.floating],
        labels: npt.NDArray[np.integer],
        temperature: float = 1.0,
    ) -> QualitySums:
        """The sums of these rows with probabilities ``softmax(logits / temperature)``."""
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        z, y = check_rows(logits, labels)
        if not len(y):
            return cls.zeros()
        rows = np.arange(len(y))
        shifted = (z - z.max(axis=1, keepdims=True)) / temperature
        nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[rows, y]
        probabilities = softmax(np.asarray(logits), temperature=temperature)
        scored = confidence_bins(probabilities, y)
        error = probabilities.astype(np.float64)
        error[rows, y] -= 1.0
        return cls(
            rows=len(y),
            nll=float(nll.sum()),
            brier=float(np.einsum("ij,ij->", error, error)),
            correct=int(scored.correct.sum()),
            confidence=float(scored.confidence.sum()),
            bin_rows=scored.bin_rows,
            bin_correct=scored.bin_correct,
            bin_confidence=scored.bin_confidence,
        )

    def __add__(self, other: QualitySums) -> QualitySums:
        return QualitySums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def quality(self) -> Quality:
        """The means over rows (all 0 for no rows)."""
        n = self.rows or 1
        return Quality(
            rows=self.rows,
            nll=self.nll / n,
            ece=float(np.abs(self.bin_correct - self.bin_confidence).sum()) / n,
            brier=self.brier / n,
            accuracy=self.correct / n,
            mean_confidence=self.confidence / n,
        )
