"""What the clients return: numpy arrays and plain values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.types import TopClass

__all__ = ["LossResult", "PredictResult", "TopClass"]

FloatArray = npt.NDArray[np.float32]


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
