"""The request schemas of the REST API's OpenAPI document, as tight as JSON Schema can state them.

Built once at start-up from the pydantic request models plus what only the served models know
(model names, image shape, class count) and the row limit. Rules JSON Schema cannot state
(labels as long as the predictions, class ids below the class count, a decodable image, a
tensor's data as long as its shape says) are checked by the service and answered 400;
docs/security.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.codecs.tensors import DATATYPES
from service.dataplane import Activation
from service.losses import LOSSES, REDUCTIONS
from service.repository import LABEL, ModelRepository
from service.rest.schemas import CalibrateBody, LossBody, PredictBody, PredictForm

__all__ = ["REF", "request_schemas"]

REF = "#/components/schemas/{model}"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _exactly_one(*names: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """``oneOf`` branches: each requires one input and that it is not null (null = absent)."""
    return [{"required": [name], "properties": {name: schemas[name]}} for name in names]


def _pixels(shapes: set[tuple[int, int, int]], rows: int) -> dict[str, Any]:
    """Pixel batches ``[N, H, W, C]``. Width and channels are stated exactly when every model
    shares them; the height is not (a schema fuzzer cannot generate three levels of
    fixed-length arrays in useful time), and the service checks it (400)."""
    pixel: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 255}
    if len(shapes) == 1:
        _, width, channels = next(iter(shapes))
        for size in (channels, width):
            pixel = {"type": "array", "items": pixel, "minItems": size, "maxItems": size}
    image = {"type": "array", "items": pixel, "minItems": 1}
    return {"type": "array", "items": image, "minItems": 1, "maxItems": rows}


def _encoded(rows: int) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "contentEncoding": "base64", "minLength": 1},
        "minItems": 1,
        "maxItems": rows,
    }


def _matrix(value: dict[str, Any], rows: int) -> dict[str, Any]:
    """``[N, C]`` with ``1 <= N <= rows`` and ``C >= 2`` (rows of one length: checked, 400)."""
    row = {"type": "array", "items": value, "minItems": 2}
    return {"type": "array", "items": row, "minItems": 1, "maxItems": rows}


def _tighten(
    schema: dict[str, Any], tight: dict[str, dict[str, Any]], required_inputs: Iterable[str]
) -> dict[str, Any]:
    properties = schema["properties"]
    for name, constraint in tight.items():
        properties[name] = {**_nullable(constraint), "description": properties[name].get(
            "description", ""
        )}  # fmt: skip
    schema["oneOf"] = _exactly_one(*required_inputs, schemas=tight)
    schema["additionalProperties"] = False
    return schema


def request_schemas(repository: ModelRepository, rows: int) -> dict[str, Any]:
    """The request bodies' component schemas, by name, for ``repository``'s models and at most
    ``rows`` rows per request."""
    models = list(repository)
    shapes = {m.image_shape for m in models}
    most_classes = max(m.num_classes for m in models)
    names = repository.names()
    several = len(names) > 1
    model: dict[str, Any] = {"type": "string", "enum": names}
    version: dict[str, Any] = {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": f"^([0-9]*|{LABEL.pattern})$"},
        ]
    }
    common: dict[str, dict[str, Any]] = {"model": model, "version": version}
    schemas: dict[str, Any] = {}

    predict = PredictBody.model_json_schema(ref_template=REF)
    schemas.update(predict.pop("$defs", {}))
    predict["properties"]["top_k"]["maximum"] = most_classes
    predict["properties"]["activation"] = {"type": "string", "enum": list(Activation)}
    inputs = {"instances": _pixels(shapes, rows), "images": _encoded(rows)}
    schemas["PredictRequest"] = _tighten(predict, {**inputs, **common}, inputs)
    if several:  # then a model must be named
        predict["properties"]["model"] = model
        predict["required"] = ["model"]

    upload = PredictForm.model_json_schema(ref_template=REF)
    upload["properties"]["file"] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "minItems": 1,
        "maxItems": rows,
    }
    upload["properties"]["activation"] = predict["properties"]["activation"]
    upload["properties"]["top_k"]["maximum"] = most_classes
    upload["properties"].update({k: v for k, v in common.items()})
    upload["required"] = ["file", "model"] if several else ["file"]
    schemas["PredictUpload"] = upload

    loss = LossBody.model_json_schema(ref_template=REF)
    number = {"type": "number"}
    row = {"anyOf": [number, {"type": "array", "items": number, "minItems": 1}]}
    predictions = {"type": "array", "items": row, "minItems": 1, "maxItems": rows}
    loss_inputs = {"logits": predictions, "probabilities": predictions, **inputs}
    loss["properties"]["loss"] = {"type": "string", "enum": list(LOSSES)}
    loss["properties"]["reduction"] = {"type": "string", "enum": list(REDUCTIONS)}
    loss["properties"]["labels"] = {"type": "array", "items": row, "minItems": 1}
    schemas["LossRequest"] = _tighten(loss, {**loss_inputs, **common}, loss_inputs)

    calibrate = CalibrateBody.model_json_schema(ref_template=REF)
    class_id = {"type": "integer", "minimum": 0, "maximum": most_classes - 1}
    one_id = {"type": "array", "items": class_id, "minItems": 1, "maxItems": 1}
    calibrate["properties"]["labels"] = {
        "type": "array",
        "items": {"anyOf": [class_id, one_id]},
        "minItems": 1,
        "maxItems": rows,
        "description": calibrate["properties"]["labels"].get("description", ""),
    }
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    calibrate_inputs = {
        "logits": _matrix(number, rows),
        "probabilities": _matrix(unit, rows),
        **inputs,
    }
    schemas["CalibrateRequest"] = _tighten(
        calibrate, {**calibrate_inputs, **common}, calibrate_inputs
    )
    schemas.update(_v2_schemas(repository, rows))
    return schemas


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _v2_schemas(repository: ModelRepository, rows: int) -> dict[str, Any]:
    parameters = {"type": "object", "additionalProperties": True}
    string, integers = {"type": "string"}, {"type": "array", "items": {"type": "integer"}}
    described = _object(["name", "datatype", "shape"], name=string, datatype=string, shape=integers)
    tensor = _object(
        ["name", "shape", "datatype"],
        name={"type": "string", "enum": sorted({m.input.name for m in repository})},
        shape={"type": "array", "items": {"type": "integer", "minimum": 0}},
        datatype={"type": "string", "enum": list(DATATYPES)},
        parameters=parameters,
        data={"type": "array"},
    )
    binary = {"parameters": {"required": ["binary_data_size"]}}
    tensor["anyOf"] = [  # the values inline, or their size in the binary part of the body
        {"required": ["data"]},
        {"required": ["parameters"], "properties": binary},
    ]
    request = _object(
        ["inputs"],
        id=string,
        parameters=parameters,
        inputs={"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
        outputs={
            "type": "array",
            "items": _object(["name"], name=string, parameters=parameters),
        },
    )
    output = _object(
        ["name", "shape", "datatype"],
        **described["properties"],
        parameters=parameters,
        data={"type": "array", "items": {"type": "number"}},
    )
    response = _object(
        ["model_name", "outputs"],
        model_name=string,
        model_version=string,
        id=string,
        parameters=parameters,
        outputs={"type": "array", "items": output},
    )
    server = _object(
        ["name", "version", "extensions"],
        name=string,
        version=string,
        extensions={"type": "array", "items": string},
    )
    model = _object(
        ["name", "platform", "inputs", "outputs"],
        name=string,
        versions={"type": "array", "items": string},
        platform=string,
        inputs={"type": "array", "items": described},
        outputs={"type": "array", "items": described},
    )
    return {
        "V2InferRequest": request,
        "V2InferResponse": response,
        "V2ServerMetadata": server,
        "V2ModelMetadata": model,
    }
