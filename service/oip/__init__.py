"""The Open Inference Protocol (KServe V2), transport-neutral; REST and gRPC encode it."""

from service.oip import repository
from service.oip.protocol import (
    PROBABILITIES,
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    infer,
    model_metadata,
    model_ready,
    server_metadata,
)

__all__ = [
    "PROBABILITIES",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "RequestedOutput",
    "infer",
    "model_metadata",
    "model_ready",
    "repository",
    "server_metadata",
]
