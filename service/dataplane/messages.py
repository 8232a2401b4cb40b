"""What the data plane takes and returns: plain typed values, free of any wire format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy.typing as npt

from service.activations import FloatArray
from service.calibration.request import CalibrationOutcome
from service.dataplane.options import PredictOptions
from service.execution.runs import Images, TopClass
from service.losses import LossResult
from service.repository import ServedModel, VersionStatus

__all__ = [
    "CalibrateRequest",
    "CalibrationOutcome",
    "FloatArray",
    "Images",
    "IndexEntry",
    "LossInput",
    "LossOutcome",
    "LossRequest",
    "ModelImages",
    "ModelVersions",
    "Prediction",
    "Predictions",
    "TopClass",
]


@dataclass(frozen=True)
class Prediction:
    """Logits of a batch and what the options asked for."""

    model: ServedModel
    logits: FloatArray
    options: PredictOptions
    scores: FloatArray | None
    """Probabilities (softmax, sigmoid) or log-probabilities (log_softmax); ``None`` for none."""
    top_k: list[list[TopClass]] | None
    calibrated: bool = False
    """Whether the version's calibration was applied to the scores."""
    temperature: float = 1.0
    """What divided the logits before the activation (calibration × the request's)."""


@dataclass(frozen=True)
class Predictions:
    """A loss computed from model outputs the caller already has."""

    values: npt.ArrayLike
    from_logits: bool

    @property
    def field(self) -> str:
        """What the values are called in messages."""
        return "logits" if self.from_logits else "probabilities"


@dataclass(frozen=True)
class ModelImages:
    """A loss computed from the logits ``model`` gives for ``images``."""

    model: ServedModel
    images: Images
    field: str
    """The request field that held the images, for messages."""


LossInput = Predictions | ModelImages


@dataclass(frozen=True)
class LossRequest:
    """A Keras loss over a labelled batch (see :func:`service.losses.compute_loss`)."""

    loss: str
    labels: npt.ArrayLike
    inputs: LossInput
    reduction: str = "sum_over_batch_size"
    sample_weight: npt.ArrayLike | None = None
    options: Mapping[str, object] = field(default_factory=dict)
    """The loss's own options by name (``None`` values mean the default)."""
    return_gradient: bool = False


@dataclass(frozen=True)
class LossOutcome:
    """The loss, plus the model and classification metrics when the model ran."""

    result: LossResult
    model: ServedModel | None
    metrics: dict[str, float] | None


@dataclass(frozen=True)
class CalibrateRequest:
    """A temperature fitted to a labelled batch (see :mod:`service.calibration.request`)."""

    labels: npt.ArrayLike
    """Class ids [N]."""
    inputs: LossInput
    """Logits or probabilities [N, C], or images the model runs on first."""


@dataclass(frozen=True)
class ModelVersions:
    """A served model's ready versions (ascending), the one that answers when none is named,
    its labels, and every known version's state."""

    name: str
    versions: list[int]
    latest: int
    """The default version (the highest ready one the version policy selects)."""
    labels: dict[str, int] = field(default_factory=dict)
    states: list[VersionStatus] = field(default_factory=list)


@dataclass(frozen=True)
class IndexEntry:
    """One line of the repository index: a model version and its state, or a model with no
    loaded version (``version`` empty)."""

    name: str
    version: str
    state: str
    reason: str = ""
