"""Classification metrics as exact sums: a :class:`Tally` per chunk, added up across chunks.

Every figure of an evaluation report is a ratio of sums (counts, per-bin sums, a confusion
matrix, loss sums), so chunks evaluated anywhere, in any order, add up to exactly what one
pass over all rows would give: no mean of means.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt

from service.activations import softmax

__all__ = [
    "ECE_BINS",
    "TOP_K",
    "ConfidenceBins",
    "Tally",
    "classification_metrics",
    "confidence_bins",
]

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al., 2017)."""
TOP_K = 5

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ConfidenceBins(NamedTuple):
    """Each row's top-1 prediction, its confidence and whether it is right, and per confidence
    bin (b holds confidences in (b/bins, (b+1)/bins]) the rows, right ones and confidence sum."""

    predicted: IntArray
    confidence: FloatArray
    correct: npt.NDArray[np.bool_]
    bin_rows: IntArray
    bin_correct: IntArray
    bin_confidence: FloatArray


def confidence_bins(
    probabilities: npt.NDArray[np.floating[Any]],
    labels: npt.NDArray[np.integer[Any]],
    bins: int = ECE_BINS,
) -> ConfidenceBins:
    """The rows' top-1 predictions and confidences from ``probabilities`` ``[N, C]``, and their
    confidence bins (the reliability diagram's and the ECE's sums)."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(labels)), predicted].astype(np.float64)
    correct = predicted == labels
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    return ConfidenceBins(
        predicted,
        confidence,
        correct,
        np.bincount(which, minlength=bins).astype(np.int64),
        np.bincount(which, weights=correct, minlength=bins).astype(np.int64),
        np.bincount(which, confidence, bins).astype(np.float64),
    )


@dataclass(frozen=True)
class Tally:
    """Sums over a set of rows. Bin b holds softmax confidences in (b/15, (b+1)/15]."""

    rows: IntArray
    """Per class: rows whose label is that class."""
    correct: IntArray
    """Per class: rows predicted right (top-1)."""
    in_top_k: IntArray
    """Per class: rows whose label is among the 5 highest logits."""
    confusion: IntArray
    """``[label, prediction]`` counts."""
    bin_rows: IntArray
    bin_correct: IntArray
    bin_confidence: FloatArray
    """Per confidence bin: rows, right predictions, and the sum of the confidences."""
    loss_sum: FloatArray
    """Per class: the sum of the per-row losses (rows a loss ignores add 0)."""
    loss_rows: IntArray
    """Per class: rows the loss counts (all but an ``ignore_class``)."""

    @classmethod
    def zeros(cls, classes: int, bins: int = ECE_BINS) -> Self:
        """The tally of no rows."""
        int_c, int_b = np.zeros(classes, np.int64), np.zeros(bins, np.int64)
        return cls(
            int_c, int_c.copy(), int_c.copy(), np.zeros((classes, classes), np.int64),
            int_b, int_b.copy(), np.zeros(bins), np.zeros(classes), int_c.copy(),
        )  # fmt: skip

    @classmethod
    def of(
        cls,
        logits: npt.NDArray[np.float32],
        labels: IntArray,
        losses: npt.NDArray[np.floating[Any]] | None = None,
        loss_counts: npt.NDArray[np.bool_] | None = None,
        *,
        bins: int = ECE_BINS,
        temperature: float = 1.0,
    ) -> Self:
        """The tally of rows with these ``logits`` ``[N, C]`` and class ids ``labels`` ``[N]``;
        ``losses`` are the rows' losses and ``loss_counts`` which rows the loss counts.
        Confidences are ``softmax(logits / temperature)``, computed as the service does."""
        classes = logits.shape[1]
        scored = confidence_bins(softmax(logits, temperature=temperature), labels, bins)
        predicted, correct = scored.predicted, scored.correct
        k = min(TOP_K, classes)
        top_k = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        in_top_k = (top_k == labels[:, None]).any(axis=1)
        counted = np.ones(len(labels), bool) if loss_counts is None else loss_counts
        loss = np.zeros(len(labels)) if losses is None else losses.astype(np.float64)

        def per_class(weights: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
            return np.bincount(labels, weights=weights, minlength=classes)

        return cls(
            rows=per_class().astype(np.int64),
            correct=per_class(correct).astype(np.int64),
            in_top_k=per_class(in_top_k).astype(np.int64),
            confusion=np.bincount(labels * classes + predicted, minlength=classes * classes)
            .reshape(classes, classes)
            .astype(np.int64),
            bin_rows=scored.bin_rows,
            bin_correct=scored.bin_correct,
            bin_confidence=scored.bin_confidence,
            loss_sum=per_class(np.where(counted, loss, 0.0)),
            loss_rows=per_class(counted).astype(np.int64),
        )

    def __add__(self, other: Tally) -> Tally:
        """The sums of both sets of rows (a subclass's other fields are not sums: dropped)."""
        return Tally(*(getattr(self, name) + getattr(other, name) for name in SUMS))

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The sums by field name (what crosses process boundaries)."""
        return {name: getattr(self, name) for name in SUMS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_arrays`."""
        return cls(**{name: np.asarray(arrays[name]) for name in SUMS})

    @property
    def total(self) -> int:
        """Rows tallied."""
        return int(self.rows.sum())

    def accuracy(self) -> float:
        return _ratio(self.correct.sum(), self.total)

    def top_k_accuracy(self) -> float:
        return _ratio(self.in_top_k.sum(), self.total)

    def ece(self) -> float:
        """Σ_b |B_b|/N · |accuracy_b − confidence_b| = Σ_b |correct_b − confidence_sum_b| / N."""
        return _ratio(np.abs(self.bin_correct - self.bin_confidence).sum(), self.total)

    def metrics(self) -> dict[str, float]:
        """Top-1 and top-5 accuracy and the expected calibration error."""
        return {
            "accuracy": self.accuracy(),
            "top_5_accuracy": self.top_k_accuracy(),
            "ece": self.ece(),
        }


SUMS = tuple(f.name for f in fields(Tally))
"""The fields of a :class:`Tally`: what adds up across chunks."""


def _ratio(numerator: Any, denominator: Any) -> float:
    return float(numerator / denominator) if denominator else 0.0


def classification_metrics(
    logits: npt.NDArray[np.float32], labels: IntArray, *, bins: int = ECE_BINS
) -> dict[str, float]:
    """Top-1 and top-5 accuracy, and the expected calibration error of the softmax confidence
    over ``bins`` equal-width bins, for one batch."""
    return Tally.of(logits, labels, bins=bins).metrics()
