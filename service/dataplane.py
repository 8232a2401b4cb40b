"""The transport-neutral core: every transport decodes a request, calls this, encodes the result.

It owns the business rules (batch limits, activations, top-k, which losses run on which
inputs) and nothing about wire formats.
"""

from __future__ import annotations

import math

import numpy as np

from service.activations import log_softmax, sigmoid, softmax
from service.errors import InvalidInputError, RequestTooLargeError, UnavailableError
from service.evaluation import classification_metrics
from service.losses import compute_loss
from service.repository import ModelRepository, ServedModel
from service.telemetry import Telemetry
from service.types import (
    ACTIVATIONS,
    FloatArray,
    LossOutcome,
    LossRequest,
    Prediction,
    PredictOptions,
    TopClass,
)

__all__ = ["DataPlane"]


class DataPlane:
    """Predictions, losses, model metadata and health over one :class:`ModelRepository`."""

    def __init__(
        self,
        repository: ModelRepository,
        telemetry: Telemetry,
        *,
        max_batch_size: int,
        threads: int | None = None,
    ) -> None:
        self.repository = repository
        self.telemetry = telemetry
        self.max_batch_size = max_batch_size
        self.threads = threads or None
        self._ready = False
        for model in repository:
            telemetry.model_info.labels(
                model.name, str(model.version), model.provider, model.metadata.get("dataset", "")
            ).set(1)

    # -- health -------------------------------------------------------------------------
    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """Models are loaded and warmed up, and the service is not shutting down."""
        return self._ready

    def set_ready(self, ready: bool) -> None:
        """Called by the server once it can take requests, and when it starts draining."""
        self._ready = ready

    def model(self, name: str | None = None, version: str | int | None = None) -> ServedModel:
        """The served model ``name`` at ``version`` (latest by default)."""
        return self.repository.get(name, version)

    # -- inference ----------------------------------------------------------------------
    def check_batch(self, rows: int, field: str) -> None:
        """Raise :class:`RequestTooLargeError` when ``rows`` exceeds the batch limit."""
        if rows > self.max_batch_size:
            raise RequestTooLargeError(
                f"{field} holds {rows} rows; the limit is {self.max_batch_size} per request",
                field=field,
            )

    def infer(self, model: ServedModel, images: FloatArray, field: str = "images") -> FloatArray:
        """Logits for a validated pixel batch ``[N, H, W, C]``."""
        if not self._ready:
            raise UnavailableError("the service is not ready")
        if images.ndim != 4 or images.shape[1:] != model.image_shape:
            raise InvalidInputError(
                f"{field} must have shape [N, {', '.join(map(str, model.image_shape))}], "
                f"got {list(images.shape)}",
                field=field,
            )
        self.check_batch(len(images), field)
        self.telemetry.batch_size.labels(model.name, str(model.version)).observe(len(images))
        return model.infer(images)

    def predict(
        self,
        images: FloatArray,
        *,
        model: str | None = None,
        version: str | int | None = None,
        options: PredictOptions = PredictOptions(),  # noqa: B008 - immutable
    ) -> Prediction:
        """Logits plus the requested activation and top-k classes."""
        _check_options(options)
        served = self.model(model, version)
        if options.top_k > served.num_classes:
            raise InvalidInputError(
                f"top_k must be between 0 and {served.num_classes}, got {options.top_k}",
                field="top_k",
            )
        logits = self.infer(served, images)
        scores = _activate(logits, options)
        ranked = logits if scores is None else scores
        return Prediction(
            served, logits, options.activation, scores, _top_k(ranked, options.top_k, served)
        )

    def loss(self, request: LossRequest) -> LossOutcome:
        """``compute_loss`` on the given predictions, or on the model's logits for ``images``
        (then with accuracy, top-5 accuracy and calibration error when labels are class ids)."""
        given = [request.logits is not None, request.probabilities is not None]
        if sum(given) + (request.images is not None) != 1:
            raise InvalidInputError(
                "give exactly one of logits, probabilities, instances or images", field="logits"
            )
        model, logits = None, request.logits
        if request.images is not None:
            model = self.model(request.model, request.version)
            logits = self.infer(model, request.images)
        else:
            field = "logits" if request.logits is not None else "probabilities"
            given_rows = request.logits if request.logits is not None else request.probabilities
            if hasattr(given_rows, "__len__"):
                self.check_batch(len(given_rows), field)
        result = compute_loss(
            request.loss,
            request.labels,
            logits=logits,
            probabilities=request.probabilities,
            reduction=request.reduction,
            sample_weight=request.sample_weight,
            return_gradient=request.return_gradient,
            threads=self.threads,
            **request.options,
        )
        metrics = None
        if model is not None:
            metrics = _metrics_for(logits, request.labels, request.options.get("ignore_class"))
        return LossOutcome(result, model, metrics)


def _check_options(options: PredictOptions) -> None:
    if options.activation not in ACTIVATIONS:
        raise InvalidInputError(
            f"activation must be one of {', '.join(ACTIVATIONS)}, got {options.activation!r}",
            field="activation",
        )
    if not (math.isfinite(options.temperature) and options.temperature > 0):
        raise InvalidInputError(
            f"temperature must be a finite number > 0, got {options.temperature}",
            field="temperature",
        )
    if options.top_k < 0:
        raise InvalidInputError(f"top_k must be >= 0, got {options.top_k}", field="top_k")


def _activate(logits: FloatArray, options: PredictOptions) -> FloatArray | None:
    t = options.temperature
    if options.activation == "softmax":
        return softmax(logits, temperature=t)
    if options.activation == "log_softmax":
        return log_softmax(logits, temperature=t)
    if options.activation == "sigmoid":
        return sigmoid(logits if t == 1 else logits / np.float32(t))
    return None


def _top_k(scores: FloatArray, k: int, model: ServedModel) -> list[list[TopClass]] | None:
    if k == 0:
        return None
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [
        [TopClass(int(c), model.class_names[c], float(row[c])) for c in classes]
        for row, classes in zip(scores, best, strict=True)
    ]


def _metrics_for(
    logits: FloatArray, labels: object, ignore_class: int | None
) -> dict[str, float] | None:
    ids = np.asarray(labels)
    if ids.ndim == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.ndim != 1:
        return None  # one-hot or soft targets: no class ids to score against
    ids = ids.astype(np.int64)
    keep = ids != ignore_class if ignore_class is not None else np.ones(len(ids), dtype=bool)
    if not keep.any():
        return None
    return classification_metrics(logits[keep], ids[keep])
