"""Protobuf messages ↔ numpy and data-plane types, for both gRPC APIs."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service.codecs import decode_images, pixels
from service.codecs.tensors import DATATYPES, datatype_of, from_bytes, from_values, to_bytes
from service.errors import InvalidInputError
from service.oip import InferInput, InferRequest, InferResponse, RequestedOutput
from service.repository import ServedModel

__all__ = [
    "array_from_tensor",
    "images_from",
    "infer_request_from_proto",
    "infer_response_to_proto",
    "parameters_from_proto",
    "tensor_from_array",
]

_OWN_TYPES = {pb.FLOAT32: "FP32", pb.UINT8: "UINT8", pb.INT64: "INT64"}
_OWN_ENUM = {name: value for value, name in _OWN_TYPES.items()}

# Typed-contents field of each datatype (FP16 and BF16 travel only as raw bytes).
_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents",
}  # fmt: skip


# -- the project's API ---------------------------------------------------------------------
def array_from_tensor(tensor: pb.Tensor, field: str) -> npt.NDArray[np.generic]:
    """A ``Tensor`` message as an array (its bytes are little-endian, row-major)."""
    if tensor.dtype not in _OWN_TYPES:
        raise InvalidInputError(f"{field}: dtype must be FLOAT32, UINT8 or INT64", field=field)
    return from_bytes(tensor.data, _OWN_TYPES[tensor.dtype], list(tensor.shape), field)


def tensor_from_array(array: npt.NDArray[np.generic]) -> pb.Tensor:
    """An array as a ``Tensor`` message (float32, uint8 or int64)."""
    name = datatype_of(array)
    return pb.Tensor(shape=list(array.shape), dtype=_OWN_ENUM[name], data=to_bytes(array))


def images_from(
    kind: str, pixel_tensor: pb.Tensor, images: pb.EncodedImages, model: ServedModel
) -> npt.NDArray[np.generic]:
    """The request's ``pixels`` tensor or encoded ``images`` (as ``kind`` says) as a pixel
    batch for ``model``."""
    if kind == "images":
        return decode_images(list(images.images), model.image_shape, "images")
    return pixels(array_from_tensor(pixel_tensor, "pixels"), "pixels")


# -- the Open Inference Protocol -----------------------------------------------------------
def _parameter(value: v2.InferParameter) -> Any:
    choice = value.WhichOneof("parameter_choice")
    return None if choice is None else getattr(value, choice)


def parameters_from_proto(parameters: Any) -> dict[str, Any]:
    """A protobuf ``map<string, InferParameter>`` as plain values."""
    return {key: _parameter(value) for key, value in parameters.items()}


def infer_request_from_proto(request: v2.ModelInferRequest) -> InferRequest:
    """``ModelInferRequest`` (raw or typed contents) → the protocol's request."""
    raw = request.raw_input_contents
    tensors = request.inputs
    if raw:
        if any(tensor.HasField("contents") for tensor in tensors):
            raise InvalidInputError(
                "give tensor data either as raw_input_contents or as typed contents, not both",
                field="raw_input_contents",
            )
        if len(raw) != len(tensors):
            raise InvalidInputError(
                f"raw_input_contents has {len(raw)} entries for {len(tensors)} inputs",
                field="raw_input_contents",
            )
    inputs = []
    for index, tensor in enumerate(tensors):
        name, datatype = tensor.name, tensor.datatype
        field = f"input {name!r}"
        if raw:
            data = from_bytes(raw[index], datatype, tensor.shape, field)
        else:
            if datatype not in _CONTENTS:
                supported = ", ".join(sorted(set(DATATYPES) & set(_CONTENTS)))
                raise InvalidInputError(f"{field}: typed contents of {supported} only", field=field)
            values = getattr(tensor.contents, _CONTENTS[datatype])
            data = from_values(list(values), datatype, tensor.shape, field)
        inputs.append(InferInput(name, data))
    outputs = [
        RequestedOutput(o.name, parameters_from_proto(o.parameters)) for o in request.outputs
    ]
    parameters = parameters_from_proto(request.parameters) if request.parameters else {}
    return InferRequest(
        request.model_name, request.model_version or None, inputs, outputs, parameters, request.id
    )


def infer_response_to_proto(response: InferResponse) -> v2.ModelInferResponse:
    """The protocol's response with every output in ``raw_output_contents`` (what
    tritonclient's ``as_numpy`` reads)."""
    message = v2.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    for output in response.outputs:
        message.outputs.add(
            name=output.name, datatype=output.datatype, shape=list(output.data.shape)
        )
        message.raw_output_contents.append(to_bytes(output.data))
    for key, value in response.parameters.items():
        parameter = message.parameters[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, float):
            parameter.double_param = value
        else:
            parameter.string_param = str(value)
    return message
