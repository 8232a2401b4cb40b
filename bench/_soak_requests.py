"""The soak's mix of requests: every kind the service answers, over REST and gRPC, each with
1–4 images, encoded once when the mix is created."""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable

import grpc
import httpx
import numpy as np
import orjson
from PIL import Image

from bench._calls import Call, grpc_caller, pixels_tensor, rest_caller
from bench._http1 import Http1Connection
from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service.launcher import RunningService

__all__ = ["KINDS", "RequestMix"]

KINDS = (
    "REST /predict pixels",
    "REST /predict PNG",
    "REST /loss images",
    "REST /loss logits",
    "REST V2 infer",
    "gRPC Predict",
    "gRPC Loss",
    "gRPC V2 ModelInfer",
)
ROWS = (1, 2, 3, 4)

Client = Callable[[int], Awaitable[tuple[str, Call]]]
"""Sends request number ``index`` of the mix; its kind and how it went."""


def _png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _int64(values: np.ndarray) -> pb.Tensor:
    return pb.Tensor(shape=list(values.shape), dtype=pb.INT64, data=values.astype("<i8").tobytes())


class RequestMix:
    """Prepared requests of every kind and row count; :meth:`client` makes a client."""

    def __init__(
        self, service: RunningService, model: str, input_name: str, classes: int, timeout: float
    ) -> None:
        self._port, self._timeout = service.http_port, timeout
        self._channel = grpc.aio.insecure_channel(service.grpc_target)
        rng = np.random.default_rng(0)
        self._rest: dict[tuple[str, int], tuple[str, bytes]] = {}
        self._grpc: dict[tuple[str, int], tuple[str, bytes]] = {}
        for rows in ROWS:
            images = rng.integers(0, 256, (rows, 32, 32, 3), dtype=np.uint8)
            labels = rng.integers(0, classes, rows)
            self._prepare(model, input_name, classes, images, labels)
        self._connections: list[Http1Connection] = []

    @classmethod
    async def create(cls, service: RunningService, model: str, timeout: float) -> RequestMix:
        """The mix for ``model``, whose input name and class count are read from the service."""
        async with httpx.AsyncClient(base_url=service.url, timeout=timeout) as http:
            metadata = (await http.get(f"/v2/models/{model}")).raise_for_status().json()
        classes = int(metadata["outputs"][0]["shape"][-1])
        return cls(service, model, metadata["inputs"][0]["name"], classes, timeout)

    def _prepare(
        self, model: str, input_name: str, classes: int, images: np.ndarray, labels: np.ndarray
    ) -> None:
        rows = len(images)
        pngs = [_png(image) for image in images]
        logits = np.random.default_rng(rows).normal(0, 2, (rows, classes)).round(3)
        rest = {
            "REST /predict pixels": ("/predict", {"model": model, "instances": images.tolist(),
                                                  "top_k": 3}),
            "REST /predict PNG": ("/predict", {"model": model, "images": pngs,
                                               "activation": "log_softmax"}),
            "REST /loss images": ("/loss", {"model": model, "images": pngs,
                                            "labels": labels.tolist(),
                                            "loss": "sparse_categorical_crossentropy"}),
            "REST /loss logits": ("/loss", {"labels": np.eye(classes)[labels].tolist(),
                                            "logits": logits.tolist(), "return_gradient": True,
                                            "loss": "categorical_focal_crossentropy"}),
            "REST V2 infer": (f"/v2/models/{model}/infer", {"inputs": [{
                "name": input_name, "shape": list(images.shape), "datatype": "UINT8",
                "data": images.ravel().tolist()}]}),
        }  # fmt: skip
        for kind, (path, body) in rest.items():
            self._rest[kind, rows] = (path, orjson.dumps(body))
        infer = v2.ModelInferRequest(model_name=model, raw_input_contents=[images.tobytes()])
        infer.inputs.add(name=input_name, datatype="UINT8", shape=list(images.shape))
        grpc_requests = {
            "gRPC Predict": ("/cifar10.v1.Classifier/Predict",
                             pb.PredictRequest(model=model, pixels=pixels_tensor(images),
                                               top_k=2)),
            "gRPC Loss": ("/cifar10.v1.Classifier/Loss",
                          pb.LossRequest(model=model, pixels=pixels_tensor(images),
                                         labels=_int64(labels), return_gradient=False,
                                         loss="sparse_categorical_crossentropy")),
            "gRPC V2 ModelInfer": ("/inference.GRPCInferenceService/ModelInfer", infer),
        }  # fmt: skip
        for kind, (method, message) in grpc_requests.items():
            self._grpc[kind, rows] = (method, message.SerializeToString())

    def client(self) -> Client:
        """A client with its own HTTP/1.1 connection (gRPC calls share one channel)."""
        connection = Http1Connection("127.0.0.1", self._port)
        self._connections.append(connection)

        async def send(index: int) -> tuple[str, Call]:
            kind = KINDS[index % len(KINDS)]
            rows = ROWS[(index // len(KINDS)) % len(ROWS)]
            if (kind, rows) in self._rest:
                path, body = self._rest[kind, rows]
                call = rest_caller(connection, path, body, self._timeout)
            else:
                method, request = self._grpc[kind, rows]
                call = grpc_caller(self._channel.unary_unary(method), request, self._timeout)
            return kind, await call()

        return send

    async def aclose(self) -> None:
        for connection in self._connections:
            await connection.close()
        await self._channel.close()
