"""The project's own gRPC API (``cifar10.v1.Classifier``) over the data plane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc
from service.dataplane import DataPlane
from service.errors import InvalidInputError
from service.grpc._typing import Context
from service.grpc.converters import array_from_tensor, images_from, tensor_from_array
from service.types import LossOutcome, LossRequest, Prediction, PredictOptions

__all__ = ["ClassifierServicer"]


def _ref(model: Any) -> pb.ModelRef:
    return pb.ModelRef(name=model.name, version=str(model.version))


def _encode_prediction(prediction: Prediction) -> pb.PredictResponse:
    response = pb.PredictResponse(
        model=_ref(prediction.model),
        activation=prediction.activation,
        logits=tensor_from_array(prediction.logits),
    )
    if prediction.scores is not None:
        target = "log_probabilities" if prediction.activation == "log_softmax" else "probabilities"
        getattr(response, target).CopyFrom(tensor_from_array(prediction.scores))
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


class ClassifierServicer(pb_grpc.ClassifierServicer):
    """Decode, call the data plane on a worker thread, encode."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def _predict(self, request: pb.PredictRequest) -> pb.PredictResponse:
        kind = request.WhichOneof("input")
        if kind is None:
            raise InvalidInputError("give pixels or images", field="input")
        model = self.plane.model(request.model or None, request.version or None)
        if kind == "images":
            self.plane.check_batch(len(request.images.images), "images")
        batch = images_from(kind, request.pixels, request.images, model)
        options = PredictOptions(
            activation=request.activation or "softmax",
            temperature=request.temperature if request.HasField("temperature") else 1.0,
            top_k=request.top_k,
        )
        prediction = self.plane.predict(
            batch, model=model.name, version=model.version, options=options
        )
        return _encode_prediction(prediction)

    async def Predict(self, request: pb.PredictRequest, context: Context) -> pb.PredictResponse:
        return await asyncio.to_thread(self._predict, request)

    async def StreamPredict(
        self, request_iterator: AsyncIterator[pb.PredictRequest], context: Context
    ) -> AsyncIterator[pb.PredictResponse]:
        async for request in request_iterator:
            yield await asyncio.to_thread(self._predict, request)

    def _loss(self, request: pb.LossRequest) -> pb.LossResponse:
        kind = request.WhichOneof("predictions")
        if kind is None:
            raise InvalidInputError(
                "give one of logits, probabilities, pixels or images", field="predictions"
            )
        if not request.HasField("labels"):
            raise InvalidInputError("labels are required", field="labels")
        labels = array_from_tensor(request.labels, "labels")
        arguments: dict[str, Any] = {}
        if kind in ("logits", "probabilities"):
            arguments[kind] = array_from_tensor(getattr(request, kind), kind)
        else:
            model = self.plane.model(request.model or None, request.version or None)
            if kind == "images":
                self.plane.check_batch(len(request.images.images), "images")
            arguments["images"] = images_from(kind, request.pixels, request.images, model)
        options: dict[str, Any] = {
            name: getattr(request, name)
            for name in ("label_smoothing", "gamma", "apply_class_balancing", "ignore_class")
            if request.HasField(name)
        }
        if request.alpha:
            options["alpha"] = request.alpha[0] if len(request.alpha) == 1 else list(request.alpha)
        weights = None
        if request.HasField("sample_weight"):
            weights = array_from_tensor(request.sample_weight, "sample_weight")
        outcome = self.plane.loss(
            LossRequest(
                loss=request.loss,
                labels=labels,
                model=request.model or None,
                version=request.version or None,
                reduction=request.reduction or "sum_over_batch_size",
                sample_weight=weights,
                options=options,
                return_gradient=request.return_gradient,
                **arguments,
            )
        )
        return _encode_loss(outcome)

    async def Loss(self, request: pb.LossRequest, context: Context) -> pb.LossResponse:
        return await asyncio.to_thread(self._loss, request)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        repository = self.plane.repository
        return pb.ListModelsResponse(
            models=[
                pb.ModelVersions(
                    name=name,
                    versions=[str(v) for v in repository.versions(name)],
                    latest=str(repository.versions(name)[-1]),
                )
                for name in repository.names()
            ]
        )
