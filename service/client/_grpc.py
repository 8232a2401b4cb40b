"""A typed client of the project's gRPC API (``cifar10.v1.Classifier``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc
from service.client._results import (
    QUALITY_FIGURES,
    CalibrationResult,
    FloatArray,
    LossResult,
    PredictResult,
    RequestError,
    TopClass,
)
from service.client._security import AUTHORIZATION, PathLike, bearer, channel_credentials
from service.client._tensors import from_tensor, to_tensor

__all__ = ["GrpcClient"]

Images = npt.NDArray[np.generic] | Sequence[bytes]


def _pixels_or_images(images: Images) -> dict[str, Any]:
    if isinstance(images, np.ndarray):
        pixels = images if images.dtype == np.uint8 else images.astype(np.float32)
        return {"pixels": to_tensor(pixels)}
    return {"images": pb.EncodedImages(images=list(images))}


def _floats(message: Any, name: str) -> FloatArray:
    return np.asarray(from_tensor(getattr(message, name)), dtype=np.float32)


Metadata = tuple[tuple[str, str], ...]


def _call(method: Any, request: Any, timeout: float, metadata: Metadata = ()) -> Any:
    try:
        return method(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        raise RequestError(exc.code().name, exc.details() or "") from None


def _array(message: Any, name: str) -> FloatArray | None:
    return _floats(message, name) if message.HasField(name) else None


def _metrics(response: pb.LossResponse) -> dict[str, float] | None:
    if not response.HasField("metrics"):
        return None
    metrics = response.metrics
    return {
        "accuracy": metrics.accuracy,
        "top_5_accuracy": metrics.top_5_accuracy,
        "ece": metrics.ece,
    }


def _prediction(response: pb.PredictResponse) -> PredictResult:
    return PredictResult(
        model=response.model.name,
        version=response.model.version,
        activation=response.activation,
        logits=_floats(response, "logits"),
        probabilities=_array(response, "probabilities"),
        log_probabilities=_array(response, "log_probabilities"),
        top_k=[
            [TopClass(int(c.class_id), c.label, float(c.score)) for c in row.classes]
            for row in response.top_k
        ],
    )


class GrpcClient:
    """``GrpcClient("127.0.0.1:50051").predict(images)``: numpy in, numpy out.

    ``api_key``: sent as ``authorization: Bearer KEY`` metadata when the service requires a
    key. TLS is used when ``tls`` is true or any of ``ca_file`` (the CA that signed the
    service's certificate; default: the system's CAs), ``cert_file`` and ``key_file`` (the
    client certificate, for mutual TLS) is given."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 60.0,
        max_message_bytes: int = 64 << 20,
        api_key: str | None = None,
        tls: bool = False,
        ca_file: PathLike | None = None,
        cert_file: PathLike | None = None,
        key_file: PathLike | None = None,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls or ca_file is not None or cert_file is not None or key_file is not None:
            credentials = channel_credentials(ca_file, cert_file, key_file)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata: Metadata = () if api_key is None else ((AUTHORIZATION, bearer(api_key)),)
        self._stub = pb_grpc.ClassifierStub(self._channel)
        self.timeout = timeout

    def _request(
        self, images: Images, model: str | None, version: str | int | None, activation: str,
        temperature: float, top_k: int,
    ) -> pb.PredictRequest:  # fmt: skip
        return pb.PredictRequest(
            model=model or "", version=str(version or ""), activation=activation,
            temperature=temperature, top_k=top_k, **_pixels_or_images(images),
        )  # fmt: skip

    def predict(
        self,
        images: Images,
        *,
        model: str | None = None,
        version: str | int | None = None,
        activation: str = "softmax",
        temperature: float = 1.0,
        top_k: int = 0,
    ) -> PredictResult:
        """Pixels ``[N, H, W, C]`` (uint8 or float 0–255), or encoded PNG/JPEG files."""
        request = self._request(images, model, version, activation, temperature, top_k)
        return _prediction(_call(self._stub.Predict, request, self.timeout, self._metadata))

    def stream_predict(self, batches: Iterable[Images], **options: Any) -> Iterator[PredictResult]:
        """One result per batch, over one stream (requests are sent as results come back)."""
        defaults = {
            "model": None,
            "version": None,
            "activation": "softmax",
            "temperature": 1.0,
            "top_k": 0,
        }
        settings = defaults | options
        requests = (self._request(batch, **settings) for batch in batches)
        try:
            responses = self._stub.StreamPredict(
                requests, timeout=self.timeout, metadata=self._metadata
            )
            for response in responses:
                yield _prediction(response)
        except grpc.RpcError as exc:
            raise RequestError(exc.code().name, exc.details() or "") from None

    def loss(
        self,
        loss: str,
        labels: npt.ArrayLike,
        *,
        logits: npt.ArrayLike | None = None,
        probabilities: npt.ArrayLike | None = None,
        images: Images | None = None,
        model: str | None = None,
        version: str | int | None = None,
        reduction: str = "sum_over_batch_size",
        sample_weight: npt.ArrayLike | None = None,
        return_gradient: bool = False,
        **options: Any,
    ) -> LossResult:
        """A Keras loss over a labelled batch; see ``service.losses.compute_loss``."""
        request = pb.LossRequest(
            loss=loss, labels=to_tensor(labels), model=model or "",
            version=str(version or ""), reduction=reduction, return_gradient=return_gradient,
        )  # fmt: skip
        if logits is not None:
            request.logits.CopyFrom(to_tensor(np.asarray(logits, np.float32)))
        if probabilities is not None:
            request.probabilities.CopyFrom(to_tensor(np.asarray(probabilities, np.float32)))
        if images is not None:
            for name, value in _pixels_or_images(images).items():
                getattr(request, name).CopyFrom(value)
        if sample_weight is not None:
            request.sample_weight.CopyFrom(to_tensor(np.asarray(sample_weight, np.float32)))
        for name, value in options.items():
            if name == "alpha":
                request.alpha.extend(np.atleast_1d(np.asarray(value, np.float32)).tolist())
            elif value is not None:
                setattr(request, name, value)
        response = _call(self._stub.Loss, request, self.timeout, self._metadata)
        value = _floats(response, "value")
        return LossResult(
            loss=response.loss,
            reduction=response.reduction,
            value=float(value) if value.ndim == 0 else value,
            per_sample=_floats(response, "per_sample"),
            gradient=_array(response, "gradient"),
            model=response.model.name if response.HasField("model") else None,
            metrics=_metrics(response),
        )  # fmt: skip

    def calibrate(
        self,
        labels: npt.ArrayLike,
        *,
        logits: npt.ArrayLike | None = None,
        probabilities: npt.ArrayLike | None = None,
        images: Images | None = None,
        model: str | None = None,
        version: str | int | None = None,
    ) -> CalibrationResult:
        """The temperature that fits class-id ``labels`` [N] best, from logits or
        probabilities [N, C] or images the model runs on (exactly one); stores nothing."""
        request = pb.CalibrateRequest(
            labels=to_tensor(np.asarray(labels)), model=model or "", version=str(version or "")
        )
        if logits is not None:
            request.logits.CopyFrom(to_tensor(np.asarray(logits, np.float32)))
        if probabilities is not None:
            request.probabilities.CopyFrom(to_tensor(np.asarray(probabilities, np.float32)))
        if images is not None:
            for name, value in _pixels_or_images(images).items():
                getattr(request, name).CopyFrom(value)
        response = _call(self._stub.Calibrate, request, self.timeout, self._metadata)
        ran = response.HasField("model")
        return CalibrationResult(
            temperature=response.temperature,
            rows=response.rows,
            iterations=response.iterations,
            at_bound=response.at_bound,
            before={name: getattr(response.before, name) for name in QUALITY_FIGURES},
            after={name: getattr(response.after, name) for name in QUALITY_FIGURES},
            model=response.model.name if ran else None,
            version=response.model.version if ran else None,
        )

    def list_models(self) -> dict[str, list[str]]:
        """Model name → versions."""
        response = _call(
            self._stub.ListModels, pb.ListModelsRequest(), self.timeout, self._metadata
        )
        return {m.name: list(m.versions) for m in response.models}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
