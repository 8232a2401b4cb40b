"""Property-based fuzzing of both gRPC services over a real channel to the in-process server.

What it proves, for every RPC of ``cifar10.v1.Classifier`` and ``inference.GRPCInferenceService``
(read from the descriptors, so a new RPC is fuzzed without touching this file):

* any message (:func:`~tests.service.grpc.proto_strategies.messages`, derived from the request
  type's descriptor: extreme numbers, odd unicode, unknown enum values, maps, oneofs, nesting)
  either succeeds or fails with a client-error status (:data:`CLIENT_ERRORS`) and a non-empty
  message: never INTERNAL, UNKNOWN, UNAVAILABLE, CANCELLED, UNIMPLEMENTED, a hang (every call has
  a deadline) or a crash;
* each malformed kind in :data:`MUTATIONS` (a valid request with one thing broken) ends with
  the status that kind deserves, mostly INVALID_ARGUMENT, NOT_FOUND for unknown models and
  versions, RESOURCE_EXHAUSTED for more rows than allowed;
* successful answers are well-formed (tensor bytes match their shapes, one answer per streamed
  request; ``ModelStreamInfer`` answers each request, as it finishes, with its response or its
  error and ends OK), and the server still answers correctly once the fuzzing is over.

The bugs the fuzzing found stay covered as explicit examples of
:func:`test_found_bugs_stay_fixed`, and error details quoting a huge name still fit the
client's metadata limit (:func:`test_error_details_fit_in_the_trailers`).
"""

from __future__ import annotations

import io
import math
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.codecs.tensors import DATATYPES
from service.losses import LOSSES, REDUCTIONS
from service.repository import LABEL
from tests.service.grpc.proto_strategies import ODD_TEXT, messages
from tests.service.helpers import MAX_ROWS, InProcessService
from tests.service.onnx_models import LinearModel

Code = grpc.StatusCode
CALL_TIMEOUT = 30.0
"""Every call's deadline: a hang fails the example instead of blocking the run."""

CLIENT_ERRORS = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.OUT_OF_RANGE,
        Code.FAILED_PRECONDITION,
        Code.RESOURCE_EXHAUSTED,
    }
)
"""What a call may fail with: the caller's fault, or a limit. Every RPC is implemented (so not
UNIMPLEMENTED), the server is up (not UNAVAILABLE) and nothing is cancelled; INTERNAL and
UNKNOWN are server faults. DEADLINE_EXCEEDED is allowed only where the request itself sets an
Open Inference Protocol ``timeout`` parameter, and only well before the client's deadline."""

INVALID = frozenset({Code.INVALID_ARGUMENT})
NOT_FOUND = frozenset({Code.NOT_FOUND})
NOT_SERVED = frozenset({Code.NOT_FOUND, Code.INVALID_ARGUMENT})
TOO_LARGE = frozenset({Code.RESOURCE_EXHAUSTED})
OK = frozenset({Code.OK})

CLASSIFIER = pb.DESCRIPTOR.services_by_name["Classifier"]
INFERENCE = v2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
METHODS: dict[str, MethodDescriptor] = {
    method.name: method for service in (CLASSIFIER, INFERENCE) for method in service.methods
}
assert len(METHODS) == len(CLASSIFIER.methods) + len(INFERENCE.methods), "method names clash"

FUZZ = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# -- calling -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One call: an RPC and its request (several for a client stream), and how it may end."""

    method: str
    requests: tuple[Message, ...]
    expect: frozenset[grpc.StatusCode] | None = None
    """The status codes the call may end with (``OK`` included when it may succeed); ``None``:
    success or any of :data:`CLIENT_ERRORS`."""
    answered: int | None = None
    """For a stream that fails: how many responses must come before the error."""
    failing: frozenset[str] = frozenset()
    """For ``ModelStreamInfer`` (which answers a failed request on the stream and goes on): the
    ids of the requests that must be answered with an error."""
    unsure: frozenset[str] = frozenset()
    """For ``ModelStreamInfer``: the ids of requests that may be answered either way. With
    ``expect`` set, every other request must be answered with a response."""


@pytest.fixture(scope="module")
def channel(served: InProcessService) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(served.grpc_target) as opened:
        grpc.channel_ready_future(opened).result(timeout=CALL_TIMEOUT)
        yield opened


@pytest.fixture(scope="module")
def stubs(channel: grpc.Channel) -> dict[str, Any]:
    return {
        CLASSIFIER.full_name: pb_grpc.ClassifierStub(channel),
        INFERENCE.full_name: v2_grpc.GRPCInferenceServiceStub(channel),
    }


def _may_time_out(case: Case) -> bool:
    return any(
        isinstance(request, v2.ModelInferRequest) and "timeout" in request.parameters
        for request in case.requests
    )


def _shown(case: Case) -> str:
    text = " | ".join(str(request).replace("\n", " ") for request in case.requests)
    return text if len(text) < 1500 else text[:1500] + "…"


def _consistent(tensor: pb.Tensor) -> None:
    sizes = {pb.FLOAT32: 4, pb.UINT8: 1, pb.INT64: 8}
    assert tensor.dtype in sizes, tensor
    assert len(tensor.data) == math.prod(tensor.shape) * sizes[tensor.dtype], tensor.shape


def _check_infer_response(response: v2.ModelInferResponse) -> None:
    assert len(response.raw_output_contents) == len(response.outputs) >= 1
    for output, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        assert output.datatype == "FP32"
        assert len(raw) == math.prod(output.shape) * 4


def _check_stream_infer(case: Case, responses: list[Message]) -> None:
    """``ModelStreamInfer`` answers in the order requests finish: matched by id, not order."""
    answers = [r for r in responses if isinstance(r, v2.ModelStreamInferResponse)]
    assert len(answers) == len(responses)
    asked = Counter(r.id for r in case.requests if isinstance(r, v2.ModelInferRequest))
    assert Counter(a.infer_response.id for a in answers) == asked, "one answer per request id"
    for answer in answers:
        request_id, message = answer.infer_response.id, answer.error_message
        if message:
            assert message.strip(), "an error without a message"
            assert message not in ("inference failed", "internal server error"), "a server fault"
            assert not answer.infer_response.outputs
            assert case.expect is None or request_id in case.failing | case.unsure, (
                f"{request_id!r} failed: {message!r}\n{_shown(case)}"
            )
        else:
            assert request_id not in case.failing, f"{request_id!r} succeeded\n{_shown(case)}"
            _check_infer_response(answer.infer_response)


def _check_answers(case: Case, responses: list[Message]) -> None:
    """What every successful answer must look like, whatever was asked."""
    method = METHODS[case.method]
    if not method.server_streaming:
        assert len(responses) == 1
    elif method.client_streaming:
        assert len(responses) == len(case.requests), "one answer per streamed request"
    if method.output_type.full_name == v2.ModelStreamInferResponse.DESCRIPTOR.full_name:
        _check_stream_infer(case, responses)
        return
    for request, response in zip(case.requests, responses, strict=False):
        if isinstance(response, pb.PredictResponse):
            _consistent(response.logits)
            assert len(response.logits.shape) == 2
            assert response.logits.shape[0] >= 1
            for scores in (response.probabilities, response.log_probabilities):
                if scores.shape:
                    _consistent(scores)
                    assert list(scores.shape) == list(response.logits.shape)
        elif isinstance(response, pb.LossResponse):
            _consistent(response.value)
            _consistent(response.per_sample)
            if response.HasField("gradient"):
                _consistent(response.gradient)
        elif isinstance(response, pb.CalibrateResponse):
            assert 1e-3 <= response.temperature <= 1e3
            assert response.rows >= 1
            assert response.iterations >= 1
            for quality in (response.before, response.after):
                figures = (quality.nll, quality.ece, quality.brier, quality.accuracy)
                assert all(math.isfinite(f) for f in figures), quality
        elif isinstance(response, v2.ModelInferResponse):
            assert isinstance(request, v2.ModelInferRequest)
            assert response.id == request.id
            _check_infer_response(response)


def call(stubs: dict[str, Any], case: Case) -> Code:
    """Make the call; assert it ended as ``case`` allows; return its status."""
    method = METHODS[case.method]
    invoke = getattr(stubs[method.containing_service.full_name], method.name)
    responses: list[Message] = []
    started = time.monotonic()
    failure: grpc.RpcError | None = None
    try:
        if method.client_streaming:
            responses.extend(invoke(iter(case.requests), timeout=CALL_TIMEOUT))
        else:
            responses.append(invoke(case.requests[0], timeout=CALL_TIMEOUT))
    except grpc.RpcError as error:
        failure = error
    if failure is not None:
        assert isinstance(failure, grpc.Call)
        code, details = failure.code(), failure.details() or ""
        allowed = set(CLIENT_ERRORS if case.expect is None else case.expect)
        if _may_time_out(case) and time.monotonic() - started < CALL_TIMEOUT / 2:
            allowed.add(Code.DEADLINE_EXCEEDED)
        assert code in allowed, f"{case.method} ended {code.name}: {details!r}\n{_shown(case)}"
        assert details.strip(), f"{case.method} ended {code.name} without a message"
        assert details != "internal server error"
        if case.answered is not None:
            assert len(responses) == case.answered
        return code
    assert case.expect is None or Code.OK in case.expect, (
        f"{case.method} succeeded; expected {sorted(c.name for c in case.expect)}\n{_shown(case)}"
    )
    _check_answers(case, responses)
    return Code.OK


# -- valid requests to start from ----------------------------------------------------------
@dataclass(frozen=True)
class Model:
    name: str
    version: str
    input: str
    output: str
    classes: int


MODELS = (
    Model("cifar10", "", "images", "logits", 10),
    Model("cifar10", "1", "images", "logits", 10),
    Model("cifar10", "2", "images", "logits", 10),
    Model("xy", "", "x", "y", 4),
    Model("xy", "1", "x", "y", 4),
)
SERVED_NAMES = frozenset(m.name for m in MODELS)
ACTIVATIONS = ("softmax", "sigmoid", "log_softmax", "none")

TYPED_FIELDS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents",
}  # fmt: skip
"""The typed-contents field of each datatype, as the protocol assigns them."""
PIXEL_TYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT16", "INT32", "INT64", "FP16", "FP32")
"""Datatypes that hold every pixel value 0-255 (FP64 too: added where the cast is exact)."""
TYPED_PIXEL_TYPES = tuple(t for t in (*PIXEL_TYPES, "FP64") if t in TYPED_FIELDS)
FLOAT_TYPES = ("FP16", "FP32", "FP64")

OWN_DTYPES = {np.dtype(np.float32): pb.FLOAT32, np.dtype(np.uint8): pb.UINT8}
OWN_DTYPES[np.dtype(np.int64)] = pb.INT64


def tensor(array: np.ndarray) -> pb.Tensor:
    """``array`` as the project's ``Tensor`` (row-major little-endian)."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return pb.Tensor(shape=list(array.shape), dtype=OWN_DTYPES[array.dtype], data=little.tobytes())


def png(image: np.ndarray | Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (with a correct CRC) claims ``width`` x ``height``."""
    data = bytearray(png(np.zeros((1, 1, 3), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _pixels(draw: st.DrawFn, rows: int | None = None) -> np.ndarray:
    count = draw(st.integers(1, 3)) if rows is None else rows
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.asarray(rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8))


def _contents(tensor: v2.ModelInferRequest.InferInputTensor) -> Any:
    return getattr(tensor.contents, TYPED_FIELDS[tensor.datatype])


def _v2_values(request: v2.ModelInferRequest) -> np.ndarray:
    """The first input's elements, flat, whichever way they travel."""
    dtype = DATATYPES[request.inputs[0].datatype]
    if request.raw_input_contents:
        return np.frombuffer(request.raw_input_contents[0], dtype=dtype).copy()
    return np.array(list(_contents(request.inputs[0])), dtype=dtype)


def _v2_store(request: v2.ModelInferRequest, values: np.ndarray) -> None:
    """Put ``values`` back where :func:`_v2_values` found them."""
    if request.raw_input_contents:
        request.raw_input_contents[0] = values.tobytes()
    else:
        field = _contents(request.inputs[0])
        del field[:]
        field.extend(values.tolist())


@st.composite
def infer_requests(
    draw: st.DrawFn,
    datatypes: tuple[str, ...] = PIXEL_TYPES,
    raw: bool | None = None,
    rows: int | None = None,
) -> v2.ModelInferRequest:
    """A valid ``ModelInferRequest``: a pixel batch as typed or raw contents of any datatype
    that holds it, any outputs the model offers, any activation."""
    model = draw(st.sampled_from(MODELS))
    datatype = draw(st.sampled_from(datatypes))
    as_raw = datatype not in TYPED_FIELDS or (draw(st.booleans()) if raw is None else raw)
    array = _pixels(draw, rows).astype(DATATYPES[datatype])
    request = v2.ModelInferRequest(
        model_name=model.name, model_version=model.version, id=draw(st.sampled_from(["", "r-1"]))
    )
    request.inputs.add(name=model.input, datatype=datatype, shape=list(array.shape))
    if as_raw:
        request.raw_input_contents.append(array.tobytes())
    else:
        _contents(request.inputs[0]).extend(array.ravel().tolist())
    activation = draw(st.sampled_from([None, "softmax", "sigmoid", "log_softmax"]))
    if activation is not None:
        request.parameters["activation"].string_param = activation
    outputs = [(), (model.output,), ("probabilities",), (model.output, "probabilities")]
    for name in draw(st.sampled_from(outputs)):
        request.outputs.add(name=name)
    return request


@st.composite
def predict_requests(
    draw: st.DrawFn, kinds: tuple[str, ...] = ("uint8", "float32", "raw", "png"), rows: int = 0
) -> pb.PredictRequest:
    """A valid ``PredictRequest``: pixels (UINT8 or FLOAT32) or encoded images (raw or PNG)."""
    model = draw(st.sampled_from(MODELS))
    array = _pixels(draw, rows or None)
    request = pb.PredictRequest(
        model=model.name,
        version=model.version,
        activation=draw(st.sampled_from(("", *ACTIVATIONS))),
        top_k=draw(st.integers(0, model.classes)),
    )
    if draw(st.booleans()):
        request.temperature = draw(st.sampled_from([0.5, 1.0, 3.0]))
    kind = draw(st.sampled_from(kinds))
    if kind == "uint8":
        request.pixels.CopyFrom(tensor(array))
    elif kind == "float32":
        request.pixels.CopyFrom(tensor(array.astype(np.float32)))
    else:
        request.images.images.extend(png(i) if kind == "png" else i.tobytes() for i in array)
    return request


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float32)


@st.composite
def loss_requests(
    draw: st.DrawFn,
    losses: tuple[str, ...] = tuple(LOSSES),
    sources: tuple[str, ...] = ("logits", "probabilities", "pixels"),
) -> pb.LossRequest:
    """A valid ``LossRequest``: class-id labels and logits, probabilities or pixels."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.integers(1, 4))
    request = pb.LossRequest(
        loss=draw(st.sampled_from(losses)),
        labels=tensor(rng.integers(0, 10, rows).astype(np.int64)),
        reduction=draw(st.sampled_from(("", *REDUCTIONS))),
        return_gradient=draw(st.booleans()),
    )
    logits = rng.normal(size=(rows, 10)).astype(np.float32)
    source = draw(st.sampled_from(sources))
    if source == "logits":
        request.logits.CopyFrom(tensor(logits))
    elif source == "probabilities":
        request.probabilities.CopyFrom(tensor(_softmax(logits)))
    else:
        request.model = "cifar10"
        request.pixels.CopyFrom(tensor(_pixels(draw, rows)))
    return request


@st.composite
def calibrate_requests(
    draw: st.DrawFn, sources: tuple[str, ...] = ("logits", "probabilities", "pixels", "images")
) -> pb.CalibrateRequest:
    """A valid ``CalibrateRequest``: class ids and logits, probabilities, pixels or PNGs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.integers(1, 6))
    request = pb.CalibrateRequest(labels=tensor(rng.integers(0, 10, rows).astype(np.int64)))
    logits = (rng.normal(size=(rows, 10)) * draw(st.sampled_from([0.1, 1.0, 30.0]))).astype(
        np.float32
    )
    source = draw(st.sampled_from(sources))
    if source == "logits":
        request.logits.CopyFrom(tensor(logits))
    elif source == "probabilities":
        request.probabilities.CopyFrom(tensor(_softmax(logits)))
    else:
        request.model = "cifar10"
        request.version = draw(st.sampled_from(["", "1", "2"]))
        pixels = _pixels(draw, rows)
        if source == "pixels":
            request.pixels.CopyFrom(tensor(pixels))
        else:
            request.images.images.extend(png(image) for image in pixels)
    return request


# -- near-valid requests: one thing broken -------------------------------------------------
Mutation = Callable[[st.DrawFn], Case]
MUTATIONS: dict[str, st.SearchStrategy[Case]] = {}
"""Every malformed kind tried over gRPC, by name: a valid request with one thing broken, and
the statuses that kind may end with."""


def mutation(name: str) -> Callable[[Mutation], Mutation]:
    def register(fn: Mutation) -> Mutation:
        assert name not in MUTATIONS, name
        MUTATIONS[name] = st.composite(fn)()
        return fn

    return register


def _not_in(values: frozenset[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=20)).filter(
        lambda text: text not in values
    )


def _unknown_versions() -> st.SearchStrategy[str]:
    """Whole numbers no model has, and labels no model has."""
    return st.one_of(
        st.integers(3, 10**30).map(str), st.sampled_from(["0", "00", "3", "v1", "canary"])
    )


def _malformed_versions() -> st.SearchStrategy[str]:
    """Versions that are neither whole numbers (non-ASCII digits included) nor labels."""
    return st.one_of(
        st.sampled_from(["-1", "+1", "1.0", "_v1", " 1", "1 ", "1e3", "0x1", "²", "١", "𝟏", "½"]),
        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=5).filter(
            lambda text: not text.isascii()
        ),
        st.text(min_size=1, max_size=10).filter(
            lambda text: not text.isdecimal() and not LABEL.fullmatch(text)
        ),
    )


def _infer(request: v2.ModelInferRequest, expect: frozenset[Code] | None = INVALID) -> Case:
    return Case("ModelInfer", (request,), expect)


@mutation("v2: typed contents count ≠ shape")
def v2_count_mismatch(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(TYPED_PIXEL_TYPES, raw=False))
    values = _contents(request.inputs[0])
    extra = draw(st.integers(1, 3072))
    if draw(st.booleans()):
        values.extend([0] * extra)
    else:
        del values[-extra:]
    return _infer(request)


@mutation("v2: raw_input_contents byte length ≠ shape")
def v2_raw_length(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(raw=True))
    extra = draw(st.integers(1, 64))
    raw = request.raw_input_contents[0]
    cut = raw[:-extra] if draw(st.booleans()) else raw + bytes(extra)
    request.raw_input_contents[0] = cut
    return _infer(request)


@mutation("v2: unsupported datatype name")
def v2_datatype_name(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    odd = st.sampled_from(["BYTES", "BF16", "FP8", "fp32", "float32", "UINT8 ", "", "STRING"])
    request.inputs[0].datatype = draw(st.one_of(odd, _not_in(frozenset(DATATYPES))))
    return _infer(request)


@mutation("v2: datatype disagrees with the contents field")
def v2_wrong_contents_field(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(TYPED_PIXEL_TYPES, raw=False))
    current = TYPED_FIELDS[request.inputs[0].datatype]
    others = [t for t, f in TYPED_FIELDS.items() if f != current]
    request.inputs[0].datatype = draw(st.sampled_from(others))
    return _infer(request)


@mutation("v2: typed contents for a raw-only datatype")
def v2_typed_fp16(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(("FP32",), raw=False))
    request.inputs[0].datatype = "FP16"
    return _infer(request)


@mutation("v2: unknown model")
def v2_unknown_model(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.model_name = draw(_not_in(SERVED_NAMES))
    return _infer(request, NOT_FOUND)


@mutation("v2: unknown model version")
def v2_unknown_version(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.model_version = draw(_unknown_versions())
    return _infer(request, NOT_FOUND)


@mutation("v2: version not a whole number")
def v2_malformed_version(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.model_version = draw(_malformed_versions())
    return _infer(request, INVALID)


@mutation("v2: version of thousands of digits")
def v2_long_version(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.model_version = "9" * draw(st.integers(4000, 6000))
    return _infer(request, NOT_FOUND)


@mutation("v2: long model name or version")
def v2_long_names(draw: st.DrawFn) -> Case:
    """Error messages quote the name; kept short enough for the client's 8 KiB metadata
    limit (non-ASCII travels percent-encoded): longer ones, see
    test_error_details_fit_in_the_trailers."""
    request = draw(infer_requests())
    if draw(st.booleans()):
        letter = draw(st.sampled_from("aé²"))
        request.model_name = letter * draw(st.integers(100, 2000 if letter == "a" else 400))
        return _infer(request, NOT_FOUND)
    request.model_version = "v" * draw(st.integers(100, 2000))
    return _infer(request, INVALID)


@mutation("v2: wrong input name")
def v2_input_name(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.inputs[0].name = draw(_not_in(frozenset({request.inputs[0].name})))
    return _infer(request)


@mutation("v2: no inputs")
def v2_no_inputs(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    del request.inputs[:]
    del request.raw_input_contents[:]
    return _infer(request)


@mutation("v2: two inputs")
def v2_two_inputs(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.inputs.add().CopyFrom(request.inputs[0])
    if request.raw_input_contents:
        request.raw_input_contents.append(request.raw_input_contents[0])
    if draw(st.booleans()):
        request.inputs[1].name = draw(st.text(max_size=8))
    return _infer(request)


@mutation("v2: NaN or infinite pixel")
def v2_nan_pixel(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(FLOAT_TYPES))
    values = _v2_values(request)
    values[draw(st.integers(0, values.size - 1))] = draw(
        st.sampled_from([math.nan, math.inf, -math.inf])
    )
    _v2_store(request, values)
    return _infer(request)


@mutation("v2: pixel outside [0, 255]")
def v2_pixel_range(draw: st.DrawFn) -> Case:
    # Every UINT8 value is a pixel value: no datatype but UINT8 itself is left out.
    request = draw(infer_requests((*PIXEL_TYPES[1:], "FP64", "INT8")))
    values = _v2_values(request)
    if values.dtype.kind == "f":
        top = float(np.finfo(values.dtype).max)
        bad = draw(st.sampled_from([-1.0, -1e-3, 255.5, 256.0, top, -top]))
    else:
        info = np.iinfo(values.dtype)
        bad = draw(
            st.sampled_from(
                [
                    v
                    for v in (-1, 256, int(info.max), int(info.min))
                    if info.min <= v <= info.max and not 0 <= v <= 255
                ]
            )
        )
    if values.dtype == np.int8:  # INT8 cannot hold 128-255: the valid pixels are clipped
        values = np.clip(values, 0, 127)
    values[draw(st.integers(0, values.size - 1))] = bad
    _v2_store(request, values)
    return _infer(request)


@mutation("v2: negative dimension")
def v2_negative_dim(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    shape = request.inputs[0].shape
    shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(-(2**63), -1))
    return _infer(request)


@mutation("v2: huge dimension")
def v2_huge_dim(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    shape = request.inputs[0].shape
    shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(2**31, 2**63 - 1))
    return _infer(request)


@mutation("v2: more than 32 dimensions")
def v2_many_dims(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    ones = [1] * draw(st.integers(29, 200))  # numpy 1 allows 32, numpy 2 64
    at = draw(st.integers(0, 4))
    shape = list(request.inputs[0].shape)
    request.inputs[0].ClearField("shape")
    request.inputs[0].shape.extend(shape[:at] + ones + shape[at:])
    return _infer(request)


@mutation("v2: empty shape of huge dimensions")
def v2_zero_size_huge(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    dims = draw(st.lists(st.integers(2**28, 2**63 - 1), min_size=1, max_size=4))
    request.inputs[0].ClearField("shape")
    request.inputs[0].shape.extend(draw(st.permutations([0, *dims])))
    _v2_store(request, _v2_values(request)[:0])
    return _infer(request)


@mutation("v2: shape not [N, 32, 32, 3]")
def v2_wrong_shape(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    rows = request.inputs[0].shape[0]
    shapes = [
        [rows, 3, 32, 32],
        [rows * 32, 32, 3],
        [rows, 3072],
        [rows * 3072],
        [rows, 32, 96],
        [1, rows, 32, 32, 3],
    ]
    request.inputs[0].ClearField("shape")
    request.inputs[0].shape.extend(draw(st.sampled_from(shapes)))
    return _infer(request)


@mutation("v2: empty batch")
def v2_empty_batch(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.inputs[0].shape[0] = 0
    _v2_store(request, _v2_values(request)[:0])
    return _infer(request)


@mutation("v2: more rows than allowed")
def v2_too_many_rows(draw: st.DrawFn) -> Case:
    rows = draw(st.integers(MAX_ROWS + 1, MAX_ROWS + 4))
    return _infer(draw(infer_requests(("UINT8",), raw=True, rows=rows)), TOO_LARGE)


@mutation("v2: raw_input_contents count ≠ inputs")
def v2_raw_count(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(raw=True))
    request.raw_input_contents.extend([b""] * draw(st.integers(1, 3)))
    return _infer(request)


@mutation("v2: typed and raw contents together")
def v2_typed_and_raw(draw: st.DrawFn) -> Case:
    """The protocol forbids it: INVALID_ARGUMENT once typed contents are given (none given:
    a valid raw request)."""
    request = draw(infer_requests(TYPED_PIXEL_TYPES, raw=True))
    values = _v2_values(request)
    _contents(request.inputs[0]).extend(values[: draw(st.integers(0, values.size))].tolist())
    return _infer(request, None)


@mutation("v2: typed contents in a second field")
def v2_mixed_contents(draw: st.DrawFn) -> Case:
    request = draw(infer_requests(TYPED_PIXEL_TYPES, raw=False))
    own = TYPED_FIELDS[request.inputs[0].datatype]
    other = draw(st.sampled_from(sorted({f for f in TYPED_FIELDS.values() if f != own})))
    getattr(request.inputs[0].contents, other).extend([1] * draw(st.integers(1, 8)))
    return _infer(request, None)


@mutation("v2: unknown output name")
def v2_unknown_output(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.outputs.add(name=draw(_not_in(frozenset({"logits", "y", "probabilities"}))))
    return _infer(request)


@mutation("v2: probabilities with activation none")
def v2_probabilities_without_activation(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.parameters["activation"].string_param = "none"
    request.outputs.add(name="probabilities")
    return _infer(request)


def _parameter(kind: str, value: Any) -> v2.InferParameter:
    return v2.InferParameter(**{kind: value})


@mutation("v2: activation parameter of a wrong type or value")
def v2_bad_activation(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    value = draw(
        st.one_of(
            st.builds(lambda v: ("int64_param", v), st.integers(-(2**63), 2**63 - 1)),
            st.builds(lambda v: ("uint64_param", v), st.integers(0, 2**64 - 1)),
            st.builds(lambda v: ("double_param", v), st.floats()),
            st.builds(lambda v: ("bool_param", v), st.booleans()),
            st.builds(lambda v: ("string_param", v), _not_in(frozenset(ACTIVATIONS))),
        )
    )
    request.parameters["activation"].CopyFrom(_parameter(*value))
    return _infer(request)


@mutation("v2: temperature parameter not a number > 0")
def v2_bad_temperature(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    value = draw(
        st.one_of(
            st.builds(lambda v: ("int64_param", v), st.integers(-(2**63), 0)),
            st.just(("uint64_param", 0)),
            st.builds(
                lambda v: ("double_param", v),
                st.sampled_from([0.0, -0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf]),
            ),
            st.builds(
                lambda v: ("string_param", v),
                st.sampled_from(["", "abc", "nan", "inf", "-1", "0", "1e400", "²"]),
            ),
        )
    )
    request.parameters["temperature"].CopyFrom(_parameter(*value))
    return _infer(request)


@mutation("v2: timeout parameter of any type and value")
def v2_odd_timeout(draw: st.DrawFn) -> Case:
    """tritonclient's client timeout, in µs: a tiny one may expire while queued."""
    request = draw(infer_requests())
    value = draw(
        st.one_of(
            st.builds(lambda v: ("int64_param", v), st.integers(-(2**63), 2**63 - 1)),
            st.builds(lambda v: ("int64_param", v), st.integers(1, 10)),
            st.builds(lambda v: ("uint64_param", v), st.integers(0, 2**64 - 1)),
            st.builds(lambda v: ("double_param", v), st.floats()),
            st.builds(lambda v: ("string_param", v), st.text(max_size=8)),
            st.builds(lambda v: ("bool_param", v), st.booleans()),
        )
    )
    request.parameters["timeout"].CopyFrom(_parameter(*value))
    return _infer(request, None)


@mutation("v2: unknown or empty parameters")
def v2_other_parameters(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    known = frozenset({"activation", "temperature", "timeout"})
    values = messages(v2.InferParameter.DESCRIPTOR)
    for key, value in draw(st.dictionaries(_not_in(known), values, max_size=4)).items():
        request.parameters[key].CopyFrom(value)
    for output in request.outputs:
        for key, value in draw(st.dictionaries(st.text(max_size=8), values, max_size=2)).items():
            output.parameters[key].CopyFrom(value)
    if draw(st.booleans()):  # a known key with no value set means "not given"
        request.parameters[draw(st.sampled_from(sorted(known)))].Clear()
    return _infer(request, OK)


@mutation("v2: odd request id")
def v2_odd_id(draw: st.DrawFn) -> Case:
    request = draw(infer_requests())
    request.id = draw(st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=40)))
    return _infer(request, OK)


_INFER_MUTATIONS = [name for name in MUTATIONS if name.startswith("v2: ")]


@mutation("v2 stream: a malformed request among valid ones")
def v2_stream_with_malformed(draw: st.DrawFn) -> Case:
    """``ModelStreamInfer`` answers the broken request with an error (where its kind must fail)
    and the valid ones, before and after it, with their responses: the call ends OK."""
    valid = draw(st.lists(infer_requests(), max_size=2))
    broken = draw(MUTATIONS[draw(st.sampled_from(_INFER_MUTATIONS))])
    trailing = draw(st.lists(infer_requests(), max_size=1))
    (bad,) = broken.requests
    assert isinstance(bad, v2.ModelInferRequest)
    bad.id = f"bad:{bad.id}"  # its own id kept (odd ids are a kind)
    for number, request in enumerate([*valid, *trailing]):
        request.id = f"s-{number}"
    requests = [*valid, bad, *trailing]
    fails = broken.expect is not None and Code.OK not in broken.expect
    return Case(
        "ModelStreamInfer",
        tuple(requests),
        OK,
        failing=frozenset({bad.id} if fails else ()),
        unsure=frozenset({bad.id} if broken.expect != OK else ()),
    )


@mutation("v2 ModelMetadata/ModelReady: unknown model or version")
def v2_metadata_unknown(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(["ModelMetadata", "ModelReady"]))
    build = v2.ModelMetadataRequest if method == "ModelMetadata" else v2.ModelReadyRequest
    if draw(st.booleans()):
        return Case(method, (build(name=draw(_not_in(SERVED_NAMES))),), NOT_FOUND)
    name = draw(st.sampled_from(sorted(SERVED_NAMES)))
    return Case(method, (build(name=name, version=draw(_unknown_versions())),), NOT_FOUND)


@mutation("repository: load, unload and statistics of any model")
def repository_control(draw: st.DrawFn) -> Case:
    method = draw(
        st.sampled_from(["RepositoryModelLoad", "RepositoryModelUnload", "ModelStatistics"])
    )
    name = draw(st.one_of(_not_in(SERVED_NAMES), st.sampled_from(sorted(SERVED_NAMES))))
    served = name in SERVED_NAMES
    if method == "ModelStatistics":
        version = draw(st.one_of(st.just(""), _unknown_versions()))
        if not name:  # every model's, and a version needs a model
            expect = INVALID if version else OK
        else:
            expect = OK if served and not version else NOT_FOUND
        return Case(method, (v2.ModelStatisticsRequest(name=name, version=version),), expect)
    if method == "RepositoryModelUnload":  # the served fixture polls: unloading is refused
        request = v2.RepositoryModelUnloadRequest(model_name=name)
        refused = frozenset({Code.FAILED_PRECONDITION})
        return Case(method, (request,), refused if served else refused | NOT_FOUND)
    load = v2.RepositoryModelLoadRequest(model_name=name)
    if draw(st.booleans()):
        load.parameters["config"].string_param = draw(st.text(max_size=20))
        return Case(method, (load,), INVALID)
    return Case(method, (load,), OK if served else NOT_FOUND)


@mutation("repository: the index, ready or not")
def repository_index(draw: st.DrawFn) -> Case:
    request = v2.RepositoryIndexRequest(
        repository_name=draw(st.text(max_size=10)), ready=draw(st.booleans())
    )
    return Case("RepositoryIndex", (request,), OK)


@mutation("v2 ModelMetadata/ModelReady: version not a whole number")
def v2_metadata_malformed_version(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(["ModelMetadata", "ModelReady"]))
    build = v2.ModelMetadataRequest if method == "ModelMetadata" else v2.ModelReadyRequest
    name = draw(st.sampled_from(sorted(SERVED_NAMES)))
    return Case(method, (build(name=name, version=draw(_malformed_versions())),), INVALID)


# The project's own API.
def _predict(request: pb.PredictRequest, expect: frozenset[Code] | None = INVALID) -> Case:
    return Case("Predict", (request,), expect)


@mutation("predict: no input")
def predict_no_input(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    request.ClearField(request.WhichOneof("input"))
    return _predict(request)


@mutation("predict: pixels dtype unspecified or unknown")
def predict_pixels_dtype(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("uint8", "float32")))
    request.pixels.dtype = draw(  # type: ignore[assignment]  # open enum: any number travels
        st.one_of(
            st.just(pb.DATA_TYPE_UNSPECIFIED), st.integers(4, 2**31 - 1), st.integers(-(2**31), -1)
        )
    )
    return _predict(request)


@mutation("predict: pixels bytes ≠ shape")
def predict_pixels_length(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("uint8", "float32")))
    extra = draw(st.integers(1, 64))
    data = request.pixels.data
    request.pixels.data = data[:-extra] if draw(st.booleans()) else data + bytes(extra)
    return _predict(request)


@mutation("predict: pixels shape not [N, 32, 32, 3]")
def predict_pixels_shape(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("uint8", "float32")))
    rows = request.pixels.shape[0]
    shapes = [
        [rows, 3, 32, 32],
        [rows * 32, 32, 3],
        [rows, 3072],
        [rows * 3072],
        [1, rows, 32, 32, 3],
        [rows, 32, 32, 3, *[1] * 70],
    ]
    request.pixels.ClearField("shape")
    request.pixels.shape.extend(draw(st.sampled_from(shapes)))
    return _predict(request)


@mutation("predict: pixels shape with negative or huge dimensions")
def predict_pixels_dims(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("uint8", "float32")))
    dims = draw(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6).filter(
            lambda d: d[1:] != [32, 32, 3]  # a shape that fits the data would be valid
        )
    )
    request.pixels.ClearField("shape")
    request.pixels.shape.extend(dims if draw(st.booleans()) else [0, *dims])
    if 0 in request.pixels.shape:
        request.pixels.data = b""
    return _predict(request)


@mutation("predict: NaN, infinite or out-of-range float pixel")
def predict_pixel_values(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("float32",)))
    values = np.frombuffer(request.pixels.data, "<f4").copy()
    bad = [math.nan, math.inf, -math.inf, -1.0, 255.01, 3.4e38, -3.4e38]
    values[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(bad))
    request.pixels.data = values.tobytes()
    return _predict(request)


@mutation("predict: image bytes neither an image nor raw pixels")
def predict_garbage_image(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("raw", "png")))
    index = draw(st.integers(0, len(request.images.images) - 1))
    junk = st.one_of(
        st.binary(max_size=200).filter(lambda b: len(b) != 3072),
        st.builds(lambda b: b"\x89PNG" + b, st.binary(min_size=3068, max_size=3068)),
        st.builds(lambda b: b"\xff\xd8" + b, st.binary(max_size=100)),
    )
    request.images.images[index] = draw(junk)
    return _predict(request)


@mutation("predict: truncated or corrupted PNG")
def predict_corrupt_png(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("png",)))
    data = bytearray(request.images.images[0])
    if draw(st.booleans()):  # cut inside the pixel data (or before it)
        at = data.find(b"IDAT")
        end = at + 4 + struct.unpack(">I", data[at - 4 : at])[0]
        data = data[: draw(st.integers(0, end - 5))]  # zlib's last 4 bytes are a checksum
        expect: frozenset[Code] | None = INVALID
    else:  # a flipped byte may still decode: any answer but a server fault
        data[draw(st.integers(8, len(data) - 1))] ^= draw(st.integers(1, 255))
        expect = None
    request.images.images[0] = bytes(data)
    return _predict(request, expect)


@mutation("predict: image of another size or mode")
def predict_image_size_mode(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("png",)))
    size = draw(st.tuples(st.integers(1, 64), st.integers(1, 64)))
    mode, fmt = draw(
        st.sampled_from(
            [
                ("RGB", "PNG"),
                ("RGBA", "PNG"),
                ("LA", "PNG"),
                ("L", "PNG"),
                ("1", "PNG"),
                ("I;16", "PNG"),
                ("CMYK", "JPEG"),
                ("L", "JPEG"),
            ]
        )
    )
    if mode == "RGB" and size == (32, 32):
        size = (33, 32)
    request.images.images[0] = png(Image.new(mode, size), fmt)
    return _predict(request)


@mutation("predict: PNG header claiming a huge size")
def predict_png_bomb(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("png", "raw")))
    width = draw(st.integers(1, 2**31 - 1))
    height = draw(st.integers(max(1, (2 * 89478485) // width + 1), 2**31 - 1))
    request.images.images[0] = png_claiming(width, height)
    return _predict(request)


@mutation("predict: empty image list")
def predict_no_images(draw: st.DrawFn) -> Case:
    request = draw(predict_requests(("raw",)))
    del request.images.images[:]
    request.images.SetInParent()
    return _predict(request)


@mutation("predict: more rows than allowed")
def predict_too_many_rows(draw: st.DrawFn) -> Case:
    rows = draw(st.integers(MAX_ROWS + 1, MAX_ROWS + 4))
    return _predict(draw(predict_requests(("uint8", "raw"), rows=rows)), TOO_LARGE)


@mutation("predict: unknown activation")
def predict_activation(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    request.activation = draw(_not_in(frozenset({"", *ACTIVATIONS})))
    return _predict(request)


@mutation("predict: temperature not a finite number > 0")
def predict_temperature(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    bad = [0.0, -0.0, -1.0, -1e-45, math.nan, math.inf, -math.inf, -3.4e38]
    request.temperature = draw(st.sampled_from(bad))
    return _predict(request)


@mutation("predict: top_k above the class count")
def predict_top_k(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    request.top_k = draw(st.integers(11, 2**32 - 1))
    return _predict(request)


@mutation("predict: unknown or missing model")
def predict_unknown_model(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    request.model = draw(_not_in(SERVED_NAMES))
    return _predict(request, NOT_SERVED)  # none named when several are served: INVALID_ARGUMENT


@mutation("predict: unknown or malformed version")
def predict_bad_version(draw: st.DrawFn) -> Case:
    request = draw(predict_requests())
    if draw(st.booleans()):
        request.version = draw(_unknown_versions())
        return _predict(request, NOT_FOUND)
    request.version = draw(_malformed_versions())
    return _predict(request, INVALID)


_PREDICT_MUTATIONS = [name for name in MUTATIONS if name.startswith("predict: ")]


@mutation("stream: a malformed message after valid ones")
def stream_then_malformed(draw: st.DrawFn) -> Case:
    valid = draw(st.lists(predict_requests(), min_size=0, max_size=2))
    broken = draw(MUTATIONS[draw(st.sampled_from(_PREDICT_MUTATIONS))])
    trailing = draw(st.lists(predict_requests(), max_size=1))
    expect = None if broken.expect is None else broken.expect | OK
    requests = (*valid, *broken.requests, *trailing)
    if broken.expect is not None and Code.OK not in broken.expect:
        return Case("StreamPredict", requests, broken.expect, answered=len(valid))
    return Case("StreamPredict", requests, expect)


# Losses.
def _loss(request: pb.LossRequest, expect: frozenset[Code] | None = INVALID) -> Case:
    return Case("Loss", (request,), expect)


@mutation("loss: unknown loss name")
def loss_unknown(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    request.loss = draw(_not_in(frozenset(LOSSES)))
    return _loss(request)


@mutation("loss: labels missing")
def loss_no_labels(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    request.ClearField("labels")
    return _loss(request)


@mutation("loss: predictions missing")
def loss_no_predictions(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    request.ClearField(request.WhichOneof("predictions"))
    return _loss(request)


@mutation("loss: labels rows ≠ predictions rows")
def loss_rows(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    rows = request.labels.shape[0]
    other = draw(st.integers(0, 8).filter(lambda n: n != rows))
    request.labels.CopyFrom(tensor(np.zeros(other, np.int64)))
    return _loss(request)


@mutation("loss: class id out of range")
def loss_class_id(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    labels = np.frombuffer(request.labels.data, "<i8").copy()
    labels[draw(st.integers(0, labels.size - 1))] = draw(
        st.one_of(st.integers(-(2**63), -1), st.integers(10, 2**63 - 1))
    )
    request.labels.data = labels.tobytes()
    return _loss(request)


@mutation("loss: float class ids not integral, NaN, infinite or huge")
def loss_float_labels(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    labels = np.frombuffer(request.labels.data, "<i8").astype(np.float32)
    bad = [0.5, -0.5, 9.99, math.nan, math.inf, -math.inf, 1e10, -1e10, 1e30, 3.4e38, -3.4e38]
    labels[draw(st.integers(0, labels.size - 1))] = draw(st.sampled_from(bad))
    request.labels.CopyFrom(tensor(labels))
    return _loss(request)


@mutation("loss: NaN or infinite logits")
def loss_nan_logits(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("logits",)))
    values = np.frombuffer(request.logits.data, "<f4").copy()
    values[draw(st.integers(0, values.size - 1))] = draw(
        st.sampled_from([math.nan, math.inf, -math.inf])
    )
    request.logits.data = values.tobytes()
    return _loss(request)


@mutation("loss: probabilities outside [0, 1]")
def loss_probability_range(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("probabilities",)))
    values = np.frombuffer(request.probabilities.data, "<f4").copy()
    bad = [-1e-6, 1.0001, 2.0, math.nan, math.inf, -math.inf, 3.4e38]
    values[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(bad))
    request.probabilities.data = values.tobytes()
    return _loss(request)


@mutation("loss: probability row summing to 0")
def loss_zero_row(draw: st.DrawFn) -> Case:
    categorical = ("categorical_crossentropy", "categorical_focal_crossentropy")
    request = draw(loss_requests(categorical, sources=("probabilities",)))
    values = np.frombuffer(request.probabilities.data, "<f4").reshape(-1, 10).copy()
    values[draw(st.integers(0, len(values) - 1))] = 0
    request.probabilities.data = values.tobytes()
    return _loss(request)


@mutation("loss: unknown reduction")
def loss_reduction(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    request.reduction = draw(_not_in(frozenset({"", *REDUCTIONS})))
    return _loss(request)


_OPTIONS_TAKEN = {
    "categorical_crossentropy": {"label_smoothing"},
    "sparse_categorical_crossentropy": {"ignore_class"},
    "binary_crossentropy": {"label_smoothing"},
    "binary_focal_crossentropy": {"label_smoothing", "alpha", "gamma", "apply_class_balancing"},
    "categorical_focal_crossentropy": {"label_smoothing", "alpha", "gamma"},
    "hinge": set(),
    "squared_hinge": set(),
    "categorical_hinge": set(),
}
assert set(_OPTIONS_TAKEN) == set(LOSSES), "a new loss: say which options it takes"
_OPTION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "label_smoothing": st.floats(0, 1, width=32),
    "alpha": st.lists(st.floats(0, 1, width=32), min_size=1, max_size=1),
    "gamma": st.floats(0, 5, width=32),
    "apply_class_balancing": st.booleans(),
    "ignore_class": st.integers(-(2**63), 2**63 - 1),
}


def _set_option(request: pb.LossRequest, name: str, value: Any) -> None:
    if name == "alpha":
        request.alpha.extend(value)
    else:
        setattr(request, name, value)


@mutation("loss: option the loss does not take")
def loss_foreign_option(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    foreign = sorted(set(_OPTION_VALUES) - _OPTIONS_TAKEN[request.loss])
    name = draw(st.sampled_from(foreign))
    _set_option(request, name, draw(_OPTION_VALUES[name]))
    return _loss(request)


@mutation("loss: option value out of range")
def loss_option_range(draw: st.DrawFn) -> Case:
    focal = ("binary_focal_crossentropy", "categorical_focal_crossentropy")
    request = draw(loss_requests((*focal, "categorical_crossentropy", "binary_crossentropy")))
    taken = sorted(_OPTIONS_TAKEN[request.loss] - {"apply_class_balancing"})
    name = draw(st.sampled_from(taken))
    nonfinite = [math.nan, math.inf, -math.inf]
    if name == "label_smoothing":
        value: Any = draw(st.sampled_from([-0.1, 1.5, 3.4e38, *nonfinite]))
    elif name == "gamma":
        value = draw(st.sampled_from([-1e-3, -1.0, *nonfinite]))
    elif request.loss == "binary_focal_crossentropy":  # one alpha in [0, 1]
        value = draw(st.sampled_from([[-0.5], [1.5], [math.nan], [0.5, 0.5]]))
    else:  # one alpha >= 0, or one per class
        value = draw(st.sampled_from([[-1.0], [math.inf], [1.0] * 3, [1.0] * 11, [-1.0] * 10]))
    _set_option(request, name, value)
    return _loss(request)


@mutation("loss: sample_weight of a wrong shape, negative or not finite")
def loss_sample_weight(draw: st.DrawFn) -> Case:
    request = draw(loss_requests())
    rows = request.labels.shape[0]
    wrong = [(rows + 1,), (rows, 2)] + ([(1, rows)] if rows > 1 else [])  # [1, 1] is [N, 1]
    shape = draw(st.sampled_from([*wrong, (rows,)]))
    weights = np.ones(shape, np.float32)
    if shape == (rows,):
        weights[draw(st.integers(0, rows - 1))] = draw(
            st.sampled_from([-1.0, -1e-30, math.nan, math.inf, -math.inf])
        )
    request.sample_weight.CopyFrom(tensor(weights))
    return _loss(request)


@mutation("loss: logits not [N, C] or [N]")
def loss_logits_rank(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("logits",)))
    rows = request.labels.shape[0]
    shape = draw(st.sampled_from([(), (rows, 0), (0,), (rows, 2, 5), (rows, 1, 1, 10)]))
    request.logits.CopyFrom(tensor(np.zeros(shape, np.float32)))
    return _loss(request)


@mutation("loss: tensor dtype unspecified or unknown")
def loss_tensor_dtype(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("logits", "probabilities")))
    which = draw(st.sampled_from(["labels", request.WhichOneof("predictions")]))
    dtype = draw(st.one_of(st.just(0), st.integers(4, 2**31 - 1), st.integers(-(2**31), -1)))
    getattr(request, which).dtype = dtype
    return _loss(request)


@mutation("loss: malformed pixels or unknown model for the model to run")
def loss_bad_pixels(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("pixels",)))
    choice = draw(st.sampled_from(["model", "version", "shape", "value"]))
    if choice == "model":
        request.model = draw(_not_in(SERVED_NAMES))
        return _loss(request, NOT_SERVED)
    if choice == "version":
        request.version = draw(_unknown_versions())
        return _loss(request, NOT_FOUND)
    if choice == "shape":
        rows = request.pixels.shape[0]
        request.pixels.ClearField("shape")
        request.pixels.shape.extend([rows, 3, 32, 32])
    else:
        request.pixels.CopyFrom(
            tensor(np.full((request.labels.shape[0], 32, 32, 3), 256.0, np.float32))
        )
    return _loss(request)


@mutation("loss: more rows than allowed")
def loss_too_many_rows(draw: st.DrawFn) -> Case:
    request = draw(loss_requests(sources=("logits", "probabilities")))
    rows = draw(st.integers(MAX_ROWS + 1, MAX_ROWS + 8))
    request.labels.CopyFrom(tensor(np.zeros(rows, np.int64)))
    request.ClearField(request.WhichOneof("predictions"))
    request.logits.CopyFrom(tensor(np.zeros((rows, 10), np.float32)))
    return _loss(request, TOO_LARGE)


@mutation("loss: extreme ignore_class")
def loss_ignore_class(draw: st.DrawFn) -> Case:
    """Any int64 is a valid class to ignore: a request of other classes still succeeds."""
    request = draw(loss_requests(("sparse_categorical_crossentropy",)))
    request.ignore_class = draw(st.integers(-(2**63), 2**63 - 1))
    return _loss(request, OK)


# Calibration.
def _calibrate(request: pb.CalibrateRequest, expect: frozenset[Code] | None = INVALID) -> Case:
    return Case("Calibrate", (request,), expect)


@mutation("calibrate: labels or predictions missing")
def calibrate_missing(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests())
    request.ClearField(draw(st.sampled_from(["labels", request.WhichOneof("predictions")])))
    return _calibrate(request)


@mutation("calibrate: labels rows ≠ predictions rows, or labels not [N]")
def calibrate_label_shape(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests())
    rows = request.labels.shape[0]
    shape = draw(
        st.one_of(
            st.integers(0, 8).filter(lambda n: n != rows).map(lambda n: (n,)),
            st.sampled_from([(), (rows, 2), (rows, 1, 1), (1, rows, 2)]),
        )
    )
    request.labels.CopyFrom(tensor(np.zeros(shape, np.int64)))
    return _calibrate(request)


@mutation("calibrate: class id out of range, or not an integer")
def calibrate_class_id(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests())
    ids = np.frombuffer(request.labels.data, "<i8").copy()
    row = draw(st.integers(0, ids.size - 1))
    if draw(st.booleans()):  # INT64 beyond the classes
        ids[row] = draw(st.one_of(st.integers(-(2**63), -1), st.integers(10, 2**63 - 1)))
        request.labels.data = ids.tobytes()
    else:  # FLOAT32 not integral, not finite, or beyond the classes
        labels = ids.astype(np.float32)
        bad = [-1.0, 10.0, 0.5, 9.99, math.nan, math.inf, -math.inf, 1e30, 3.4e38, -3.4e38]
        labels[row] = draw(st.sampled_from(bad))
        request.labels.CopyFrom(tensor(labels))
    return _calibrate(request)


@mutation("calibrate: logits not finite or not [N, C >= 2]")
def calibrate_bad_logits(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests(sources=("logits",)))
    rows = request.labels.shape[0]
    if draw(st.booleans()):
        values = np.frombuffer(request.logits.data, "<f4").copy()
        values[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
        request.logits.data = values.tobytes()
    else:
        shape = draw(st.sampled_from([(), (rows,), (rows, 1), (rows, 0), (0, 10), (rows, 2, 5)]))
        request.logits.CopyFrom(tensor(np.zeros(shape, np.float32)))
    return _calibrate(request)


@mutation("calibrate: probabilities outside [0, 1] or a row not summing to 1")
def calibrate_bad_probabilities(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests(sources=("probabilities",)))
    values = np.frombuffer(request.probabilities.data, "<f4").reshape(-1, 10).copy()
    row = draw(st.integers(0, len(values) - 1))
    if draw(st.booleans()):
        bad = [-1e-6, 1.0001, 2.0, math.nan, math.inf, -math.inf, 3.4e38]
        values[row, draw(st.integers(0, 9))] = draw(st.sampled_from(bad))
    else:
        values[row] = draw(st.sampled_from([0.0, 0.2, 0.5]))  # sums 0, 2 or 5
    request.probabilities.data = values.tobytes()
    return _calibrate(request)


@mutation("calibrate: tensor dtype unspecified or unknown")
def calibrate_tensor_dtype(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests(sources=("logits", "probabilities", "pixels")))
    which = draw(st.sampled_from(["labels", request.WhichOneof("predictions")]))
    dtype = draw(st.one_of(st.just(0), st.integers(4, 2**31 - 1), st.integers(-(2**31), -1)))
    getattr(request, which).dtype = dtype
    return _calibrate(request)


@mutation("calibrate: unknown model or version for the model to run")
def calibrate_unknown_model(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests(sources=("pixels", "images")))
    if draw(st.booleans()):
        request.model = draw(_not_in(SERVED_NAMES))
        return _calibrate(request, NOT_SERVED)
    request.version = draw(_unknown_versions())
    return _calibrate(request, NOT_FOUND)


@mutation("calibrate: more rows than allowed")
def calibrate_too_many_rows(draw: st.DrawFn) -> Case:
    request = draw(calibrate_requests(sources=("logits", "probabilities", "pixels")))
    rows = draw(st.integers(MAX_ROWS + 1, MAX_ROWS + 8))
    request.labels.CopyFrom(tensor(np.zeros(rows, np.int64)))
    kind = request.WhichOneof("predictions")
    if kind == "pixels":
        request.pixels.CopyFrom(tensor(np.zeros((rows, 32, 32, 3), np.uint8)))
    else:
        getattr(request, kind).CopyFrom(tensor(np.full((rows, 10), 0.1, np.float32)))
    return _calibrate(request, TOO_LARGE)


# -- generic messages ----------------------------------------------------------------------
_VERSIONS = st.sampled_from(["", "1", "2", "3", "0", "01", "²"])
_NAMES = st.sampled_from(sorted(SERVED_NAMES))
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "inference.ModelInferRequest.model_name": _NAMES,
    "inference.ModelInferRequest.model_version": _VERSIONS,
    "inference.ModelInferRequest.InferInputTensor.name": st.sampled_from(["images", "x"]),
    "inference.ModelInferRequest.InferInputTensor.datatype": st.sampled_from([*DATATYPES, "BYTES"]),
    "inference.ModelInferRequest.InferInputTensor.shape": st.lists(
        st.sampled_from([0, 1, 2, 3, 32]), max_size=5
    ),
    "inference.ModelInferRequest.InferRequestedOutputTensor.name": st.sampled_from(
        ["logits", "y", "probabilities"]
    ),
    "inference.ModelInferRequest.ParametersEntry.key": st.sampled_from(
        ["activation", "temperature", "timeout"]
    ),
    "inference.InferParameter.string_param": st.sampled_from(ACTIVATIONS),
    "inference.ModelMetadataRequest.name": _NAMES,
    "inference.ModelMetadataRequest.version": _VERSIONS,
    "inference.ModelReadyRequest.name": _NAMES,
    "inference.ModelReadyRequest.version": _VERSIONS,
    "cifar10.v1.PredictRequest.model": _NAMES,
    "cifar10.v1.PredictRequest.version": _VERSIONS,
    "cifar10.v1.PredictRequest.activation": st.sampled_from(ACTIVATIONS),
    "cifar10.v1.PredictRequest.top_k": st.integers(0, 11),
    "cifar10.v1.LossRequest.model": _NAMES,
    "cifar10.v1.LossRequest.version": _VERSIONS,
    "cifar10.v1.LossRequest.loss": st.sampled_from(sorted(LOSSES)),
    "cifar10.v1.LossRequest.reduction": st.sampled_from(REDUCTIONS),
    "cifar10.v1.CalibrateRequest.model": _NAMES,
    "cifar10.v1.CalibrateRequest.version": _VERSIONS,
    "cifar10.v1.Tensor": st.builds(
        tensor,
        st.sampled_from([np.uint8, np.float32, np.int64]).flatmap(
            lambda dtype: st.lists(st.integers(0, 4), max_size=3).map(
                lambda shape: np.ones(shape, dtype)
            )
        ),
    ),
}
"""Values the server knows, so that generic messages also get past the first lookup."""


@pytest.mark.parametrize("method", sorted(METHODS))
@FUZZ
@given(data=st.data())
def test_any_message_gets_a_client_status(
    stubs: dict[str, Any], method: str, data: st.DataObject
) -> None:
    descriptor = METHODS[method]
    requests = messages(descriptor.input_type, hints=HINTS)
    if descriptor.client_streaming:
        drawn = tuple(data.draw(st.lists(requests, min_size=1, max_size=3)))
    else:
        drawn = (data.draw(requests),)
    # Requests without fields (liveness, readiness, metadata, the model list) always succeed.
    call(stubs, Case(method, drawn, OK if not descriptor.input_type.fields else None))


@pytest.mark.parametrize("kind", list(MUTATIONS))
@settings(FUZZ, max_examples=max(20, settings.default.max_examples // 3))  # per kind: ~60
@given(data=st.data())
def test_malformed_kind_gets_its_status(
    stubs: dict[str, Any], kind: str, data: st.DataObject
) -> None:
    call(stubs, data.draw(MUTATIONS[kind]))


@pytest.mark.parametrize(
    ("method", "requests"),
    [
        ("ModelInfer", infer_requests()),
        ("ModelStreamInfer", st.lists(infer_requests(), min_size=1, max_size=4)),
        ("Predict", predict_requests()),
        ("StreamPredict", st.lists(predict_requests(), min_size=1, max_size=3)),
        ("Loss", loss_requests()),
        ("Calibrate", calibrate_requests()),
    ],
)
@settings(FUZZ, max_examples=max(10, settings.default.max_examples // 3))
@given(data=st.data())
def test_the_requests_mutations_start_from_succeed(
    stubs: dict[str, Any], method: str, requests: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    drawn = data.draw(requests)
    call(stubs, Case(method, tuple(drawn) if isinstance(drawn, list) else (drawn,), OK))


def test_mutations_cover_every_rpc_with_fields() -> None:
    covered = {"StreamPredict", "Predict", "Loss", "Calibrate", "ModelInfer", "ModelStreamInfer",
               "ModelMetadata", "ModelReady",
               "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload",
               "ModelStatistics"}  # fmt: skip
    with_fields = {name for name, method in METHODS.items() if method.input_type.fields}
    assert with_fields <= covered
    assert len(MUTATIONS) >= 20


def _one_image(data: bytes) -> pb.PredictRequest:
    return pb.PredictRequest(model="cifar10", images=pb.EncodedImages(images=[data]))


def _raw_input(shape: list[int], data: bytes, datatype: str = "UINT8") -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="cifar10", raw_input_contents=[data])
    request.inputs.add(name="images", datatype=datatype, shape=shape)
    return request


def _typed_input(datatype: str, shape: list[int]) -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="cifar10")
    request.inputs.add(name="images", datatype=datatype, shape=shape)
    return request


def _fp64_input(values: np.ndarray) -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="cifar10")
    tensor = request.inputs.add(name="images", datatype="FP64", shape=list(values.shape))
    tensor.contents.fp64_contents.extend(values.ravel().tolist())
    return request


_HUGE_PIXEL = np.zeros((1, 32, 32, 3))
_HUGE_PIXEL[0, 0, 0, 0] = 1.7976931348623157e308


@settings(FUZZ, max_examples=max(10, settings.default.max_examples // 3))
@example(_predict(_one_image(png_claiming(20000, 20000)))).via(
    "PIL's DecompressionBombError for a PNG header over its pixel limit escaped: INTERNAL"
)
@example(_infer(_raw_input([1] * 61 + [1, 32, 32, 3], bytes(3072)))).via(
    "numpy's ValueError for more than 64 dimensions escaped the codecs: INTERNAL"
)
@example(_infer(_typed_input("UINT16", [0, 2**61]))).via(
    "found by the thorough profile: an empty [0, 2**61] UINT16 array numpy accepts, whose cast "
    "to float32 overflows ('array is too big'): INTERNAL"
)
@example(
    _predict(
        pb.PredictRequest(
            model="cifar10", pixels=pb.Tensor(shape=[0, 2**62, 2**62], dtype=pb.UINT8)
        )
    )
).via("numpy's 'array is too big' for an empty shape of huge dimensions escaped: INTERNAL")
@example(_infer(v2.ModelInferRequest(model_name="cifar10", model_version="²"), INVALID)).via(
    "'²'.isdigit() is true but int('²') raises ValueError: INTERNAL"
)
@example(Case("ModelReady", (v2.ModelReadyRequest(name="xy", version="²"),), INVALID)).via(
    "the same, through ModelReady"
)
@example(
    _infer(v2.ModelInferRequest(model_name="cifar10", model_version="9" * 5000), NOT_FOUND)
).via("int() refuses more than 4300 digits (ValueError): INTERNAL")
@example(
    _loss(
        pb.LossRequest(
            loss="hinge",
            labels=tensor(np.zeros(1, np.int64)),
            logits=pb.Tensor(dtype=pb.FLOAT32, data=bytes(4)),
        )
    )
).via("logits of shape [] reached len() of a 0-d array (TypeError): INTERNAL")
@example(
    _loss(
        pb.LossRequest(
            loss="sparse_categorical_crossentropy",
            labels=tensor(np.array([1e30], np.float32)),
            logits=tensor(np.zeros((1, 10), np.float32)),
        )
    )
).via("float class id 1e30 cast to int64 (RuntimeWarning, an error under this suite): INTERNAL")
@example(_infer(_fp64_input(_HUGE_PIXEL))).via(
    "FP64 pixel beyond float32 overflowed in the cast (RuntimeWarning, an error here): INTERNAL"
)
@given(case=st.sampled_from(list(MUTATIONS)).flatmap(MUTATIONS.__getitem__))
def test_found_bugs_stay_fixed(stubs: dict[str, Any], case: Case) -> None:
    """Each explicit example is a bug the fuzzing found (fixed); then a mix of the kinds."""
    call(stubs, case)


@pytest.mark.parametrize("method", ["ModelInfer", "ModelMetadata", "Predict"])
def test_error_details_fit_in_the_trailers(stubs: dict[str, Any], method: str) -> None:
    name = "m" * 100_000
    requests: dict[str, Message] = {
        "ModelInfer": v2.ModelInferRequest(model_name=name),
        "ModelMetadata": v2.ModelMetadataRequest(name=name),
        "Predict": pb.PredictRequest(model=name, pixels=tensor(np.zeros((1, 32, 32, 3), np.uint8))),
    }
    assert call(stubs, Case(method, (requests[method],), NOT_FOUND)) == Code.NOT_FOUND


# -- afterwards ----------------------------------------------------------------------------
def test_server_still_answers_correctly(
    stubs: dict[str, Any],
    channel: grpc.Channel,
    references: dict[tuple[str, int], LinearModel],
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", CLASSIFIER.full_name, INFERENCE.full_name):
        request = health_pb2.HealthCheckRequest(service=service)
        answer = health.Check(request, timeout=10)  # type: ignore[attr-defined]
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    images = np.random.default_rng(7).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    response = stubs[CLASSIFIER.full_name].Predict(
        pb.PredictRequest(model="cifar10", version="1", pixels=tensor(images)), timeout=10
    )
    logits = np.frombuffer(response.logits.data, "<f4").reshape(list(response.logits.shape))
    np.testing.assert_allclose(
        logits, references[("cifar10", 1)].logits(images), rtol=1e-5, atol=1e-5
    )
    infer = stubs[INFERENCE.full_name].ModelInfer(
        _raw_input([3, 32, 32, 3], images.tobytes()), timeout=10
    )
    assert [o.name for o in infer.outputs] == ["logits", "probabilities"]
    np.testing.assert_allclose(
        np.frombuffer(infer.raw_output_contents[0], "<f4").reshape(3, 10),
        references[("cifar10", 2)].logits(images),
        rtol=1e-5,
        atol=1e-5,
    )
