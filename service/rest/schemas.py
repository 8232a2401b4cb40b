"""Request and response bodies of the project's REST API (also its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from service.losses import LOSSES, REDUCTIONS

__all__ = [
    "LossBody",
    "LossResponse",
    "ModelRef",
    "PredictBody",
    "PredictForm",
    "PredictResponse",
]

Activation = Literal["softmax", "sigmoid", "log_softmax", "none"]
Version = StrictInt | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PredictForm(_Strict):
    """Options of ``POST /predict``; also the form fields of a multipart upload."""

    model: str | None = Field(None, description="Model name (default: the only served model).")
    version: Version | None = Field(None, description="Model version (default: the latest).")
    activation: Activation = Field("softmax", description="What to return besides the logits.")
    temperature: float = Field(1.0, gt=0, description="Logits are divided by it first.")
    top_k: int = Field(0, ge=0, description="Also return the k best classes of each image.")


class PredictBody(PredictForm):
    """``POST /predict`` as JSON: exactly one of ``instances`` and ``images``."""

    instances: list[Any] | None = Field(
        None, description="Pixel values 0–255, nested [N, height, width, channels]."
    )
    images: list[str] | None = Field(
        None,
        description="Base64 PNG/JPEG files of the model's image size, or base64 raw "
        "height×width×channels uint8 bytes.",
    )


class ModelRef(BaseModel):
    name: str
    version: str


class TopClassBody(BaseModel):
    class_id: int
    label: str
    score: float


class PredictResponse(BaseModel):
    model: ModelRef
    activation: Activation
    logits: list[list[float]]
    probabilities: list[list[float]] | None = Field(None, description="softmax or sigmoid")
    log_probabilities: list[list[float]] | None = Field(None, description="log_softmax")
    top_k: list[list[TopClassBody]] | None = None


class LossBody(_Strict):
    """``POST /loss``: labels plus exactly one of logits, probabilities, instances, images."""

    loss: str = Field(description="Keras identifier: " + ", ".join(LOSSES))
    labels: list[Any] = Field(description="Class ids [N], or targets [N, C].")
    logits: list[Any] | None = Field(None, description="[N, C] raw model outputs.")
    probabilities: list[Any] | None = Field(None, description="[N, C] values in [0, 1].")
    instances: list[Any] | None = Field(None, description="Pixels [N, H, W, C]: the model runs.")
    images: list[str] | None = Field(None, description="Base64 images: the model runs.")
    model: str | None = None
    version: Version | None = None
    reduction: str = Field("sum_over_batch_size", description=", ".join(REDUCTIONS))
    sample_weight: float | list[float] | None = None
    label_smoothing: float | None = None
    alpha: float | list[float] | None = None
    gamma: float | None = None
    apply_class_balancing: StrictBool | None = None
    ignore_class: StrictInt | None = None
    return_gradient: StrictBool = False

    def options(self) -> dict[str, Any]:
        """The loss-specific options that were given."""
        names = ("label_smoothing", "alpha", "gamma", "apply_class_balancing", "ignore_class")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class Metrics(BaseModel):
    accuracy: float
    top_5_accuracy: float
    ece: float = Field(description="Expected calibration error, 15 equal-width bins.")


class LossResponse(BaseModel):
    loss: str
    reduction: str
    value: float | list[float]
    per_sample: list[float]
    gradient: list[list[float]] | list[float] | None = None
    model: ModelRef | None = None
    metrics: Metrics | None = None
