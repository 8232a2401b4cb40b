"""Typed clients of the project's own APIs, numpy in and numpy out.

A client machine needs grpcio, protobuf, httpx and numpy only: nothing here imports the server.

>>> from service.client import GrpcClient
>>> with GrpcClient("127.0.0.1:50051") as client:          # doctest: +SKIP
...     result = client.predict(images, top_k=3)
...     result.probabilities.shape, result.top_k[0][0].label
"""

from service.client._grpc import GrpcClient
from service.client._rest import RestClient
from service.client._results import (
    CalibrationResult,
    LossResult,
    PredictResult,
    RequestError,
    TopClass,
)

__all__ = [
    "CalibrationResult",
    "GrpcClient",
    "LossResult",
    "PredictResult",
    "RequestError",
    "RestClient",
    "TopClass",
]
