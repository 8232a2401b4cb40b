"""The project's own gRPC API (``cifar10.v1.Classifier``) over the data plane."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc
from service.dataplane import (
    CalibrateRequest,
    CalibrationOutcome,
    DataPlane,
    LossInput,
    LossOutcome,
    LossRequest,
    ModelImages,
    Prediction,
    Predictions,
    PredictOptions,
)
from service.errors import InvalidInputError
from service.grpc._typing import Context, deadline_of
from service.grpc.converters import array_from_tensor, images_from, tensor_from_array
from service.losses import LOSS_OPTIONS
from service.repository import ServedModel

__all__ = ["ClassifierServicer"]


def _ref(model: ServedModel) -> pb.ModelRef:
    return pb.ModelRef(name=model.name, version=str(model.version))


def _encode_prediction(prediction: Prediction) -> pb.PredictResponse:
    activation = prediction.options.activation
    response = pb.PredictResponse(
        model=_ref(prediction.model),
        activation=activation,
        logits=tensor_from_array(prediction.logits),
        calibrated=prediction.calibrated,
        temperature=prediction.temperature,
    )
    if prediction.scores is not None and activation.scores_name is not None:
        getattr(response, activation.scores_name).CopyFrom(tensor_from_array(prediction.scores))
    for row in prediction.top_k or []:
        response.top_k.add(
            classes=[pb.TopClass(class_id=t.class_id, label=t.label, score=t.score) for t in row]
        )
    return response


def _encode_loss(outcome: LossOutcome) -> pb.LossResponse:
    result = outcome.result
    response = pb.LossResponse(
        loss=result.name,
        reduction=result.reduction,
        value=tensor_from_array(np.asarray(result.value, dtype=np.float32)),
        per_sample=tensor_from_array(result.per_sample),
    )
    if result.gradient is not None:
        response.gradient.CopyFrom(tensor_from_array(result.gradient))
    if outcome.model is not None:
        response.model.CopyFrom(_ref(outcome.model))
    if outcome.metrics is not None:
        response.metrics.CopyFrom(pb.ClassificationMetrics(**outcome.metrics))
    return response


def _encode_calibration(outcome: CalibrationOutcome) -> pb.CalibrateResponse:
    fit = outcome.fit
    response = pb.CalibrateResponse(
        temperature=fit.temperature,
        rows=fit.rows,
        iterations=fit.iterations,
        at_bound=fit.at_bound,
        before=pb.CalibrationQuality(**outcome.before.figures()),
        after=pb.CalibrationQuality(**outcome.after.figures()),
    )
    if outcome.model is not None:
        response.model.CopyFrom(_ref(outcome.model))
    return response


def _loss_options(request: pb.LossRequest) -> dict[str, Any]:
    """The loss options the request sets (``alpha``: one number, or one per class)."""
    options: dict[str, Any] = {}
    for name in LOSS_OPTIONS:
        if name == "alpha":
            if request.alpha:
                alpha = list(request.alpha)
                options["alpha"] = alpha[0] if len(alpha) == 1 else alpha
        elif request.HasField(name):  # type: ignore[arg-type]  # every option is a field
            options[name] = getattr(request, name)
    return options


def _image_bytes(images: pb.EncodedImages) -> int:
    return sum(len(image) for image in images.images)


class ClassifierServicer(pb_grpc.ClassifierServicer):
    """Decode, await the data plane, encode."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def _images(
        self, kind: str, request: pb.PredictRequest | pb.LossRequest | pb.CalibrateRequest
    ) -> Any:
        model = self.plane.model(request.model or None, request.version or None)
        self.plane.check_room(model)
        if kind == "images":
            self.plane.check_rows(len(request.images.images), "images")
        size = _image_bytes(request.images)
        images = await self.plane.offload(
            size, images_from, kind, request.pixels, request.images, model
        )
        return model, images

    async def _predict(self, request: pb.PredictRequest, context: Context) -> pb.PredictResponse:
        kind = request.WhichOneof("input")
        if kind is None:
            raise InvalidInputError("give pixels or images", field="input")
        options = PredictOptions.parse(
            activation=request.activation or None,
            temperature=request.temperature if request.HasField("temperature") else None,
            top_k=request.top_k or None,
            calibrated=request.calibrated if request.HasField("calibrated") else None,
        )
        model, images = await self._images(kind, request)
        prediction = await self.plane.predict(
            model, images, options, field=kind, deadline=deadline_of(context)
        )
        return _encode_prediction(prediction)

    async def Predict(self, request: pb.PredictRequest, context: Context) -> pb.PredictResponse:
        return await self._predict(request, context)

    async def StreamPredict(
        self, request_iterator: AsyncIterator[pb.PredictRequest], context: Context
    ) -> AsyncIterator[pb.PredictResponse]:
        async for request in request_iterator:
            yield await self._predict(request, context)

    async def _labelled_inputs(self, request: pb.LossRequest | pb.CalibrateRequest) -> LossInput:
        """The predictions of a labelled request (its ``predictions`` oneof), once its labels
        are known to be there."""
        kind = request.WhichOneof("predictions")
        if kind is None:
            raise InvalidInputError(
                "give one of logits, probabilities, pixels or images", field="predictions"
            )
        if not request.HasField("labels"):
            raise InvalidInputError("labels are required", field="labels")
        if kind in ("logits", "probabilities"):
            return Predictions(array_from_tensor(getattr(request, kind), kind), kind == "logits")
        model, images = await self._images(kind, request)
        return ModelImages(model, images, kind)

    async def Loss(self, request: pb.LossRequest, context: Context) -> pb.LossResponse:
        inputs = await self._labelled_inputs(request)
        weights = None
        if request.HasField("sample_weight"):
            weights = array_from_tensor(request.sample_weight, "sample_weight")
        outcome = await self.plane.loss(
            LossRequest(
                loss=request.loss,
                labels=array_from_tensor(request.labels, "labels"),
                inputs=inputs,
                reduction=request.reduction or "sum_over_batch_size",
                sample_weight=weights,
                options=_loss_options(request),
                return_gradient=request.return_gradient,
            ),
            deadline=deadline_of(context),
        )
        return _encode_loss(outcome)

    async def Calibrate(
        self, request: pb.CalibrateRequest, context: Context
    ) -> pb.CalibrateResponse:
        inputs = await self._labelled_inputs(request)
        labels = array_from_tensor(request.labels, "labels")
        outcome = await self.plane.calibrate(
            CalibrateRequest(labels, inputs), deadline=deadline_of(context)
        )
        return _encode_calibration(outcome)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[
                pb.ModelVersions(
                    name=m.name,
                    versions=[str(v) for v in m.versions],
                    latest=str(m.latest),
                    states=[
                        pb.VersionState(
                            version=str(s.version),
                            state=s.state,
                            reason=s.reason,
                            calibration_temperature=s.calibration_temperature or 0.0,
                        )
                        for s in m.states
                    ],
                    labels={label: str(v) for label, v in m.labels.items()},
                )
                for m in self.plane.models.served()
            ]
        )
