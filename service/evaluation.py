"""Classification metrics reported with a loss when the model itself ran."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.activations import softmax

__all__ = ["ECE_BINS", "classification_metrics"]

ECE_BINS = 15


def classification_metrics(
    logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], *, bins: int = ECE_BINS
) -> dict[str, float]:
    """Top-1 and top-5 accuracy, and the expected calibration error of the softmax confidence
    over ``bins`` equal-width bins (Guo et al., 2017): Σ_b |B_b|/N · |accuracy_b − confidence_b|,
    bin b holding confidences in (b/bins, (b+1)/bins]."""
    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(labels)), predicted].astype(np.float64)
    correct = predicted == labels
    k = min(5, logits.shape[1])
    top_k = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    in_top_k = (top_k == labels[:, None]).any(axis=1)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    accuracy_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    ece = np.abs(accuracy_sum - confidence_sum).sum() / len(labels)
    return {
        "accuracy": float(correct.mean()),
        "top_5_accuracy": float(in_top_k.mean()),
        "ece": float(ece),
    }
