"""Request and response bodies of the project's REST API (also its OpenAPI schema).

Prediction options come from :class:`~service.dataplane.PredictOptions` and loss options from
the loss registry, so each is defined once for every transport.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
)

from service.dataplane import Activation, PredictOptions
from service.losses import LOSS_OPTIONS, LOSSES, REDUCTIONS

__all__ = [
    "CalibrateBody",
    "CalibrateResponse",
    "CalibrationQualityBody",
    "ErrorBody",
    "HealthStatus",
    "LossBody",
    "LossResponse",
    "ModelDescription",
    "ModelList",
    "ModelRef",
    "PredictBody",
    "PredictForm",
    "PredictResponse",
    "V2ErrorBody",
]


def _whole_number(value: Any) -> Any:
    """JSON has one number type: ``2.0`` is the version 2, as JSON Schema's integer says."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Version = Annotated[StrictInt | str, BeforeValidator(_whole_number)]
_STRICT = {bool: StrictBool, int: StrictInt}
"""JSON types that must not be coerced (``"yes"`` is not a flag, ``1.5`` not a class id)."""


class PredictForm(PredictOptions):
    """Options of ``POST /predict``; also the form fields of a multipart upload."""

    model: str | None = Field(None, description="Model name (default: the only served model).")
    version: Version | None = Field(None, description="Model version (default: the latest).")

    def options(self) -> PredictOptions:
        """The prediction options alone (already validated: not checked again)."""
        return PredictOptions.model_construct(
            **{name: getattr(self, name) for name in PredictOptions.model_fields}
        )


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
    calibrated: bool = Field(
        description="Whether the version's calibration was applied to the scores."
    )
    temperature: float = Field(
        description="What divided the logits before the activation: the calibration's "
        "temperature (when applied) times the request's."
    )


class LabelledFields(BaseModel):
    """What ``POST /loss`` and ``POST /calibrate`` share: labels plus exactly one of logits,
    probabilities, instances, images (with the model those are for)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    labels: list[Any] = Field(description="Class ids [N], or targets [N, C].")
    logits: list[Any] | None = Field(None, description="[N, C] (or [N]) raw model outputs.")
    probabilities: list[Any] | None = Field(None, description="[N, C] (or [N]) values in [0, 1].")
    instances: list[Any] | None = Field(None, description="Pixels [N, H, W, C]: the model runs.")
    images: list[str] | None = Field(None, description="Base64 images: the model runs.")
    model: str | None = Field(None, description="Model that runs on instances or images.")
    version: Version | None = Field(None, description="Its version (default: the latest).")


class _LossFields(LabelledFields):
    loss: str = Field(description="Keras identifier: " + ", ".join(LOSSES))
    reduction: str = Field("sum_over_batch_size", description=", ".join(REDUCTIONS))
    sample_weight: float | list[float] | None = Field(
        None, description="One weight for all rows, or one per row."
    )
    return_gradient: StrictBool = False

    def options(self) -> dict[str, Any]:
        """The loss-specific options that were given."""
        given = {name: getattr(self, name) for name in LOSS_OPTIONS}
        return {name: value for name, value in given.items() if value is not None}


LossBody: type[_LossFields] = create_model(  # type: ignore[call-overload]
    "LossBody",
    __base__=_LossFields,
    __doc__="``POST /loss``: labels plus exactly one of logits, probabilities, instances, images.",
    **{
        name: (_STRICT.get(option.annotation, option.annotation) | None,
               Field(None, description=option.description))
        for name, option in LOSS_OPTIONS.items()
    },
)  # fmt: skip


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


class CalibrateBody(LabelledFields):
    """``POST /calibrate``: class-id labels plus exactly one of logits, probabilities,
    instances, images."""

    labels: list[Any] = Field(description="Class ids [N] in 0..C-1.")
    logits: list[Any] | None = Field(None, description="[N, C] raw model outputs, C >= 2.")
    probabilities: list[Any] | None = Field(
        None,
        description="[N, C] softmax outputs in [0, 1], each row summing to 1 (within 0.001); "
        "fitted as logits log(p).",
    )


class CalibrationQualityBody(BaseModel):
    """Calibration figures of the request's rows at one temperature (means over rows)."""

    nll: float = Field(description="Mean negative log-likelihood of the labels.")
    ece: float = Field(description="Expected calibration error, 15 equal-width bins.")
    brier: float = Field(
        description="Mean squared distance between the probabilities and the one-hot label."
    )
    accuracy: float
    mean_confidence: float = Field(description="Mean of the highest probability of each row.")


class CalibrateResponse(BaseModel):
    """A temperature fitted to the request's rows; nothing is stored."""

    temperature: float = Field(
        description="The fitted temperature: probabilities are softmax(logits / temperature)."
    )
    rows: int
    iterations: int = Field(description="Passes over the rows the fit took.")
    at_bound: bool = Field(
        description="The temperature hit the fitted range's bound (separable or degenerate data)."
    )
    before: CalibrationQualityBody = Field(description="At temperature 1.")
    after: CalibrationQualityBody = Field(
        description="At the fitted temperature, on the same rows (an optimistic figure)."
    )
    model: ModelRef | None = Field(None, description="The model that ran, when one did.")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error kind.")
    message: str = Field(description="What is wrong, naming the field at fault.")


class ErrorBody(BaseModel):
    """Every error of the project's API."""

    error: ErrorDetail


class V2ErrorBody(BaseModel):
    """Every error under ``/v2``, as the Open Inference Protocol defines it."""

    error: str


class HealthStatus(BaseModel):
    status: str = Field(description="live or ready")


class VersionStateBody(BaseModel):
    version: str
    state: str = Field(description="LOADING, READY, UNLOADING or FAILED")
    reason: str = Field(description="Why it failed (or why a reload failed), else empty")
    calibration_temperature: float | None = Field(
        None, description="The temperature of the calibration a READY version serves with"
    )


class ModelVersionsBody(BaseModel):
    name: str
    versions: list[str] = Field(description="Ready versions, ascending")
    latest: str = Field(description="The version that answers when none is named")
    labels: dict[str, str] = Field(description="Version labels and the versions they name")
    states: list[VersionStateBody] = Field(description="Every known version's state")


class ModelList(BaseModel):
    models: list[ModelVersionsBody]


class TensorBody(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelDescription(BaseModel):
    """Everything a caller needs to use a model version."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    versions: list[str]
    inputs: list[TensorBody]
    outputs: list[TensorBody]
    input_layout: str
    image_shape: list[int]
    classes: list[str]
    dataset: str
    device: str
    batching: dict[str, Any]
    metadata: dict[str, Any]
    calibration: dict[str, Any] | None = Field(
        description="The version's calibration.json (temperature, how it was fitted), or null"
    )


class RepositoryIndexBody(BaseModel):
    """Triton's index request (an empty body is the same as ``{}``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repository_name: str = Field("", description="Ignored: there is one repository.")
    ready: bool = Field(False, description="Only the versions that are ready.")


class ModelControlBody(BaseModel):
    """Triton's load / unload request."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repository_name: str = Field("", description="Ignored: there is one repository.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Unload: unload_dependents (accepted, nothing depends on a model). Load: "
        "none; a config override or file contents are refused.",
    )


class IndexEntryBody(BaseModel):
    name: str
    version: str = Field(description="Empty for a model with no version loaded")
    state: str = Field(description="READY, LOADING, UNLOADING or UNAVAILABLE")
    reason: str = Field(description="Why it is not ready, e.g. the load error")


CONTROL_BODIES = (RepositoryIndexBody, ModelControlBody)
"""Bodies that routes parse themselves (they are optional), added to the document's schemas."""
