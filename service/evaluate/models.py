"""The model an evaluation scores: an ONNX file run in-process, or a served model over the Open
Inference Protocol's gRPC API (this service, Triton, MLServer, KServe...).

A :class:`LocalModel` or :class:`ServedModel` is the picklable description sent to workers;
:func:`open_scorer` turns it into a :class:`Scorer` inside each worker, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from service.errors import ModelLoadError, ServiceError
from service.evaluate.errors import EvaluationError

__all__ = [
    "LocalModel", "ModelSpec", "Scorer", "ServedModel", "find_version", "local_model",
    "open_scorer",
]  # fmt: skip

Logits = npt.NDArray[np.float32]
TYPES: dict[str, tuple[type[np.floating[Any]], str]] = {
    "FP32": (np.float32, "fp32_contents"),
    "FP64": (np.float64, "fp64_contents"),
    "FP16": (np.float16, ""),  # raw contents only: the protocol has no typed FP16 field
}
"""Output datatypes of a served model: numpy type (raw bytes) and typed-contents field."""


@dataclass(frozen=True)
class LocalModel:
    """A model version of a repository, carried as its ONNX bytes: workers need no access to
    the repository."""

    name: str
    version: int
    path: str
    onnx: bytes = field(repr=False)
    device: str = "cpu"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "path": self.path}


@dataclass(frozen=True)
class ServedModel:
    """A model served at ``address`` (``host:port`` of an Open Inference Protocol gRPC API)."""

    address: str
    name: str
    version: int | None = None
    api_key: str | None = field(default=None, repr=False)
    ca_pem: bytes | None = field(default=None, repr=False)
    """TLS: the CA certificate(s) that signed the server's (TLS is off when ``None``); the
    bytes, so that no worker needs the file."""
    request_rows: int = 256
    """Rows per inference request (a chunk is sent as several requests at once)."""
    timeout: float = 120.0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "address": self.address}


ModelSpec = LocalModel | ServedModel


class Scorer(Protocol):
    """Logits for pixel batches."""

    @property
    def class_names(self) -> tuple[str, ...] | None: ...
    @property
    def image_shape(self) -> tuple[int, int, int]: ...
    @property
    def classes(self) -> int: ...

    def logits(self, images: npt.NDArray[np.uint8]) -> Logits: ...

    def close(self) -> None: ...


def find_version(
    repository: Path, name: str | None, version: int | None
) -> tuple[str, int, dict[int, Path]]:
    """The named (or only) model of ``repository``, the version asked for (or its latest), and
    every version of that model with its ONNX file."""
    from service.repository import discover

    try:
        found = discover(repository)
    except ModelLoadError as exc:
        raise EvaluationError(str(exc)) from None
    if name is None:
        if len(found) != 1:
            raise EvaluationError(f"--model is required: {repository} holds {', '.join(found)}")
        name = next(iter(found))
    if name not in found:
        raise EvaluationError(f"{repository} has no model {name!r} (found {', '.join(found)})")
    versions = found[name]
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        listed = ", ".join(map(str, versions))
        raise EvaluationError(f"model {name!r} has no version {chosen} (found {listed})")
    return name, chosen, versions


def local_model(
    repository: Path, name: str | None, version: int | None, device: str = "cpu"
) -> LocalModel:
    """The named (or only) model of ``repository`` at ``version`` (or its latest)."""
    name, chosen, versions = find_version(repository, name, version)
    path = versions[chosen]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror})") from None
    return LocalModel(name, chosen, str(path), data, device)


class OnnxScorer:
    """The model run by onnxruntime in this process, as the service runs it."""

    def __init__(self, spec: LocalModel, threads: int) -> None:
        from service.batching import BatchingOptions
        from service.repository._model import load_model
        from service.repository._runtime import providers_for, session_options

        try:
            self._model = load_model(
                spec.name, spec.version, Path(spec.path), providers_for(spec.device),
                session_options(threads), BatchingOptions.model_validate({}), data=spec.onnx,
            )  # fmt: skip
        except ServiceError as exc:
            raise EvaluationError(exc.message) from None
        self.class_names: tuple[str, ...] | None = self._model.spec.class_names
        self.image_shape = self._model.spec.image_shape
        self.classes = self._model.spec.num_classes

    def logits(self, images: npt.NDArray[np.uint8]) -> Logits:
        return self._model.infer(images)

    def close(self) -> None:
        pass


class V2GrpcScorer:
    """Sends each chunk as concurrent ``ModelInfer`` calls of FP32 (or UINT8) raw tensors."""

    def __init__(self, spec: ServedModel) -> None:
        import grpc

        from service._generated.inference import grpc_predict_v2_pb2 as pb
        from service._generated.inference import grpc_predict_v2_pb2_grpc as pb_grpc
        from service.client._security import AUTHORIZATION, bearer

        self._pb, self._spec, self._grpc = pb, spec, grpc
        options = [("grpc.max_receive_message_length", 64 << 20)]
        options.append(("grpc.max_send_message_length", 64 << 20))
        if spec.ca_pem is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=spec.ca_pem)
            self._channel = grpc.secure_channel(spec.address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(spec.address, options=options)
        self._metadata = () if spec.api_key is None else ((AUTHORIZATION, bearer(spec.api_key)),)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        try:
            self._describe()
        except BaseException:
            self._channel.close()
            raise

    def close(self) -> None:
        self._channel.close()

    def _describe(self) -> None:
        spec, pb = self._spec, self._pb
        version = "" if spec.version is None else str(spec.version)
        request = pb.ModelMetadataRequest(name=spec.name, version=version)
        metadata = self._call(self._stub.ModelMetadata, request)
        if len(metadata.inputs) != 1 or len(metadata.inputs[0].shape) != 4:
            raise EvaluationError(f"{spec.name}: expected one image input [N, H, W, C]")
        tensor = metadata.inputs[0]
        self._input, self._datatype = tensor.name, tensor.datatype
        if self._datatype not in ("FP32", "UINT8"):
            raise EvaluationError(f"{spec.name}: input datatype {self._datatype} is not FP32")
        height, width, channels = (int(d) for d in tensor.shape[1:])
        self.image_shape: tuple[int, int, int] = (height, width, channels)
        outputs = {o.name: o for o in metadata.outputs}
        self._output = "logits" if "logits" in outputs else next(iter(outputs))
        self.class_names: tuple[str, ...] | None = None  # the protocol's metadata has none
        last = list(outputs[self._output].shape)[-1:]
        if last and last[0] > 0:
            self.classes = int(last[0])
        else:
            self.classes = self.logits(np.zeros((1, *self.image_shape), np.uint8)).shape[1]

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._spec.timeout, metadata=self._metadata)
        except self._grpc.RpcError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: Any) -> EvaluationError:
        return EvaluationError(f"{self._spec.address}: {exc.code().name}: {exc.details()}")

    def _result(self, future: Any) -> Any:
        try:
            return future.result()
        except self._grpc.RpcError as exc:
            raise self._failure(exc) from None

    def _request(self, images: npt.NDArray[np.uint8]) -> Any:
        pb = self._pb
        dtype = np.float32 if self._datatype == "FP32" else np.uint8
        return pb.ModelInferRequest(
            model_name=self._spec.name,
            model_version="" if self._spec.version is None else str(self._spec.version),
            inputs=[pb.ModelInferRequest.InferInputTensor(
                name=self._input, datatype=self._datatype, shape=list(images.shape)
            )],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=self._output)],
            raw_input_contents=[np.ascontiguousarray(images, dtype=dtype).tobytes()],
        )  # fmt: skip

    def logits(self, images: npt.NDArray[np.uint8]) -> Logits:
        step = self._spec.request_rows
        futures: list[Any] = [
            self._stub.ModelInfer.future(
                self._request(images[i : i + step]),
                timeout=self._spec.timeout,
                metadata=self._metadata,
            )
            for i in range(0, len(images), step)
        ]
        parts = [self._result(f) for f in futures]
        sizes = [len(images[i : i + step]) for i in range(0, len(images), step)]
        return np.concatenate([self._decode(p, n) for p, n in zip(parts, sizes, strict=True)])

    def _decode(self, response: Any, rows: int) -> Logits:
        """The output ``[rows, C]`` of a response, as float32, whatever numeric type."""
        for index, output in enumerate(response.outputs):
            if output.name != self._output:
                continue
            shape = tuple(int(d) for d in output.shape)
            if len(shape) != 2 or shape[0] != rows:
                raise EvaluationError(
                    f"{self._spec.address}: output {self._output!r} has shape {list(shape)}, "
                    f"expected [{rows}, classes]"
                )
            if output.datatype not in TYPES:
                raise EvaluationError(
                    f"{self._spec.address}: output {self._output!r} is {output.datatype}, not "
                    "a floating-point tensor"
                )
            dtype, field_name = TYPES[output.datatype]
            if response.raw_output_contents:
                values = np.frombuffer(response.raw_output_contents[index], dtype)
            elif field_name:
                values = np.asarray(getattr(output.contents, field_name), dtype)
            else:
                raise EvaluationError(f"{self._spec.address}: {output.datatype} needs raw contents")
            if values.size != rows * shape[1]:
                raise EvaluationError(f"{self._spec.address}: output {self._output!r} is truncated")
            return values.reshape(shape).astype(np.float32)
        raise EvaluationError(f"{self._spec.address}: no {self._output!r} in the response")


def open_scorer(spec: ModelSpec, threads: int) -> Scorer:
    """What scores images in this worker (``threads``: onnxruntime's threads per run)."""
    if isinstance(spec, LocalModel):
        return OnnxScorer(spec, threads)
    return V2GrpcScorer(spec)
