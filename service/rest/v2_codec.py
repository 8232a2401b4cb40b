"""The Open Inference Protocol's HTTP/JSON body, with the binary tensor data extension.

A request body is JSON, or — when the ``Inference-Header-Content-Length`` header is present —
that many bytes of JSON followed by the raw tensors of the inputs that declare
``parameters.binary_data_size``, in input order. Responses use the same layout for outputs
asked for with ``parameters.binary_data`` (or the request parameter ``binary_data_output``).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from service.codecs.json_arrays import JsonArray, JsonObject, fields, parse, to_python
from service.codecs.tensors import from_bytes, from_json, to_bytes
from service.errors import InvalidInputError
from service.oip import InferInput, InferRequest, InferResponse, RequestedOutput

__all__ = ["HEADER_LENGTH", "decode_infer_request", "encode_infer_response"]

HEADER_LENGTH = "Inference-Header-Content-Length"


class _Tensor(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: Any = None


class _Output(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[_Tensor]
    outputs: list[_Output] = Field(default_factory=list)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    if not header_length.isdigit() or int(header_length) > len(body):
        raise InvalidInputError(
            f"{HEADER_LENGTH} must be the byte length of the JSON header (body has {len(body)})",
            field=HEADER_LENGTH,
        )
    return body[: int(header_length)], memoryview(body)[int(header_length) :]


def _plain(document: Any) -> Any:
    """The header as Python values, except each input's ``data``: kept as parsed, so that its
    numbers are read into numpy in one go."""
    if not isinstance(document, JsonObject):
        return to_python(document)
    plain = fields(document, keep=("inputs",))
    inputs = plain.get("inputs")
    if isinstance(inputs, JsonArray):
        plain["inputs"] = [
            fields(t, keep=("data",)) if isinstance(t, JsonObject) else to_python(t) for t in inputs
        ]
    elif inputs is not None:
        plain["inputs"] = to_python(inputs)
    return plain


def decode_infer_request(
    body: bytes, header_length: str | None, model: str, version: str | None
) -> InferRequest:
    """Parse an infer request body (JSON, or JSON plus binary tensors)."""
    header, binary = _split(body, header_length)
    parsed = _Request.model_validate(_plain(parse(header)))
    inputs, offset = [], 0
    for tensor in parsed.inputs:
        field = f"input {tensor.name!r}"
        size = tensor.parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInputError(
                    f"{field}: binary_data_size {size!r} exceeds the body", field=field
                )
            data = from_bytes(binary[offset : offset + size], tensor.datatype, tensor.shape, field)
            offset += size
        elif tensor.data is None:
            raise InvalidInputError(
                f"{field}: needs data or parameters.binary_data_size", field=field
            )
        else:
            data = from_json(tensor.data, tensor.datatype, tensor.shape, field)
        inputs.append(InferInput(tensor.name, data))
    if offset != len(binary):
        raise InvalidInputError(
            f"{len(binary) - offset} bytes of binary data belong to no input", field="body"
        )
    outputs = [RequestedOutput(o.name, o.parameters) for o in parsed.outputs]
    return InferRequest(model, version, inputs, outputs, parsed.parameters, parsed.id)


def encode_infer_response(
    response: InferResponse, binary_by_default: bool
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary tensors follow it."""
    entries, chunks = [], []
    for output in response.outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(output.data.shape),
        }
        if output.parameters.get("binary_data", binary_by_default):
            raw = to_bytes(output.data)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = output.data.ravel()
        entries.append(entry)
    body: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": entries,
    }
    if response.id:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = response.parameters
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
