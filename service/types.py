"""The data plane's requests and results: plain dataclasses, free of any wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.losses import LossResult
from service.repository import ServedModel

__all__ = [
    "ACTIVATIONS",
    "LossOutcome",
    "LossRequest",
    "PredictOptions",
    "Prediction",
    "TopClass",
]

FloatArray = npt.NDArray[np.float32]

ACTIVATIONS = ("softmax", "sigmoid", "log_softmax", "none")
"""What a prediction may return besides the logits."""


@dataclass(frozen=True)
class PredictOptions:
    """How to post-process logits."""

    activation: str = "softmax"
    temperature: float = 1.0
    top_k: int = 0


@dataclass(frozen=True)
class TopClass:
    """One of the k best classes of an image."""

    class_id: int
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """Logits of a batch and what the options asked for."""

    model: ServedModel
    logits: FloatArray
    activation: str
    scores: FloatArray | None
    """Probabilities (softmax, sigmoid) or log-probabilities (log_softmax); ``None`` for none."""
    top_k: list[list[TopClass]] | None


@dataclass(frozen=True)
class LossRequest:
    """A loss over a labelled batch, from logits, probabilities, or images the model scores."""

    loss: str
    labels: Any
    logits: Any = None
    probabilities: Any = None
    images: FloatArray | None = None
    """Pixel batch ``[N, H, W, C]`` in 0–255; the model runs first."""
    model: str | None = None
    version: str | int | None = None
    reduction: str = "sum_over_batch_size"
    sample_weight: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    return_gradient: bool = False


@dataclass(frozen=True)
class LossOutcome:
    """The loss, plus the model and classification metrics when the model ran."""

    result: LossResult
    model: ServedModel | None
    metrics: dict[str, float] | None
