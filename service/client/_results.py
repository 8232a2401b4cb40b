"""What the clients return: numpy arrays and plain values, and the one error they raise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CalibrationResult", "LossResult", "PredictResult", "RequestError", "TopClass"]

FloatArray = npt.NDArray[np.float32]


class RequestError(RuntimeError):
    """The service refused or failed a request: ``code`` is the error's name (``not_found``,
    ``invalid_argument``, … over REST; the gRPC status name over gRPC), ``status`` the HTTP
    status where there is one."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{status or ''} {code}: {message}".strip())
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class TopClass:
    """One of the k best classes of an image."""

    class_id: int
    label: str
    score: float


@dataclass(frozen=True)
class PredictResult:
    model: str
    version: str
    activation: str
    logits: FloatArray
    probabilities: FloatArray | None
    log_probabilities: FloatArray | None
    top_k: list[list[TopClass]]


@dataclass(frozen=True)
class LossResult:
    loss: str
    reduction: str
    value: float | FloatArray
    per_sample: FloatArray
    gradient: FloatArray | None
    model: str | None
    metrics: dict[str, float] | None


QUALITY_FIGURES = ("nll", "ece", "brier", "accuracy", "mean_confidence")
"""The figures of ``CalibrationResult.before`` and ``.after``, by name."""


@dataclass(frozen=True)
class CalibrationResult:
    """A temperature fitted to a labelled batch (nothing stored on the service): probabilities
    are ``softmax(logits / temperature)``; ``before`` (T = 1) and ``after`` (the fitted T) hold
    NLL, ECE (15 bins), Brier score, accuracy and mean confidence on the same rows."""

    temperature: float
    rows: int
    iterations: int
    at_bound: bool
    before: dict[str, float]
    after: dict[str, float]
    model: str | None
    version: str | None
