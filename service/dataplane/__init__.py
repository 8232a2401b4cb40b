"""The transport-neutral data plane and the typed values it takes and returns."""

from service.activations import Activation
from service.dataplane.messages import (
    CalibrateRequest,
    CalibrationOutcome,
    FloatArray,
    Images,
    IndexEntry,
    LossInput,
    LossOutcome,
    LossRequest,
    ModelImages,
    ModelVersions,
    Prediction,
    Predictions,
    TopClass,
)
from service.dataplane.options import PredictOptions
from service.dataplane.plane import DataPlane

__all__ = [
    "Activation",
    "CalibrateRequest",
    "CalibrationOutcome",
    "DataPlane",
    "FloatArray",
    "Images",
    "IndexEntry",
    "LossInput",
    "LossOutcome",
    "LossRequest",
    "ModelImages",
    "ModelVersions",
    "PredictOptions",
    "Prediction",
    "Predictions",
    "TopClass",
]
