"""Open Inference Protocol semantics over the data plane: metadata, readiness and inference.

Outputs offered for every model: the model's own output (``logits``) and ``probabilities``,
computed by the server with the activation chosen by the request parameter ``activation``
(``softmax`` by default, or ``sigmoid``/``log_softmax``; with ``log_softmax`` the
``probabilities`` output holds log-probabilities; ``none`` offers the logits alone).
``temperature`` and ``calibrated`` (apply the version's calibration; true by default) are also
request parameters, and ``timeout`` (microseconds, as tritonclient sends it) bounds how long the
request may wait for the model. Every response's parameters say whether the calibration was
applied (``calibrated``) and what divided the logits (``temperature``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service import __version__
from service.codecs import pixels
from service.codecs.tensors import datatype_of
from service.dataplane import DataPlane, PredictOptions
from service.errors import InvalidInputError, NotFoundError
from service.repository import ServedModel

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
    "server_metadata",
]

SERVER_NAME = "cifar10-inference-service"
PLATFORM = "onnxruntime_onnx"
PROBABILITIES = "probabilities"


@dataclass(slots=True)
class InferInput:
    name: str
    data: npt.NDArray[np.generic]


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferRequest:
    model: str
    version: str | None
    inputs: list[InferInput]
    outputs: list[RequestedOutput] = field(default_factory=list)
    """Empty: every output."""
    parameters: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(slots=True)
class InferOutput:
    name: str
    data: npt.NDArray[np.generic]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def datatype(self) -> str:
        return datatype_of(self.data)


@dataclass(slots=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str
    outputs: list[InferOutput]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data in the response."""
        return sum(output.data.nbytes for output in self.outputs)


def server_metadata(extensions: list[str]) -> dict[str, Any]:
    """``GET /v2`` / ``ServerMetadata``."""
    return {"name": SERVER_NAME, "version": __version__, "extensions": extensions}


def model_ready(plane: DataPlane, name: str, version: str | None) -> bool:
    """Whether the model (version) is served and the service is ready: false for a model of the
    repository that is not loaded (unloaded, or failed), as in Triton; unknown → NotFoundError."""
    try:
        plane.model(name, version or None)
    except NotFoundError:
        if name not in plane.repository.names() and plane.models.known(name):
            return False  # known, not loaded
        raise
    return plane.ready()


def model_metadata(plane: DataPlane, name: str, version: str | None) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{v}]`` / ``ModelMetadata``."""
    model = plane.model(name, version or None)
    classes = model.num_classes
    outputs = [(model.output.name, [-1, classes]), (PROBABILITIES, [-1, classes])]
    return {
        "name": model.name,
        "versions": [str(v) for v in plane.repository.versions(model.name)],
        "platform": PLATFORM,
        "inputs": [
            {
                "name": model.input.name,
                "datatype": model.input.datatype,
                "shape": list(model.input.shape),
            }
        ],
        "outputs": [{"name": n, "datatype": "FP32", "shape": s} for n, s in outputs],
    } | _calibration_parameters(model)


def _calibration_parameters(model: ServedModel) -> dict[str, Any]:
    """The version's calibration, as metadata ``parameters`` (a key clients pass over)."""
    if model.calibration is None:
        return {}
    return {"parameters": {"calibration_temperature": model.calibration.temperature}}


def _deadline(parameters: dict[str, Any], deadline: float | None) -> float | None:
    """The earlier of ``deadline`` (the transport's) and the ``timeout`` parameter, in
    microseconds, as tritonclient sends a client timeout: it bounds the time the request may
    wait for the model."""
    timeout = parameters.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        return deadline
    own = time.monotonic() + timeout / 1e6
    return own if deadline is None else min(own, deadline)


async def infer(
    plane: DataPlane, request: InferRequest, *, deadline: float | None = None
) -> InferResponse:
    """Run the model on the request's one image input and return the requested outputs;
    ``deadline`` (``time.monotonic()``) drops it if it is still queued then."""
    model = plane.model(request.model, request.version or None)
    if len(request.inputs) != 1 or request.inputs[0].name != model.input.name:
        names = [i.name for i in request.inputs]
        raise InvalidInputError(
            f"model {model.name} takes one input named {model.input.name!r}, got {names}",
            field="inputs",
        )
    field = f"input {model.input.name!r}"
    images = pixels(request.inputs[0].data, field)
    options = PredictOptions.parse(
        "parameter ",
        activation=request.parameters.get("activation"),
        temperature=request.parameters.get("temperature"),
        calibrated=request.parameters.get("calibrated"),
    )
    available = [model.output.name]
    if options.activation.scores_name is not None:
        available.append(PROBABILITIES)
    wanted = [o.name for o in request.outputs] or available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise InvalidInputError(
            f"unknown output {unknown[0]!r} (model {model.name} offers {', '.join(available)} "
            f"with activation {options.activation})",
            field="outputs",
        )
    prediction = await plane.predict(
        model, images, options, field=field, deadline=_deadline(request.parameters, deadline)
    )
    values = {model.output.name: prediction.logits, PROBABILITIES: prediction.scores}
    parameters = {o.name: o.parameters for o in request.outputs}
    outputs = [InferOutput(name, values[name], parameters.get(name, {})) for name in wanted]  # type: ignore[arg-type]
    scaling = {"calibrated": prediction.calibrated, "temperature": prediction.temperature}
    return InferResponse(model.name, str(model.version), request.id, outputs, scaling)
