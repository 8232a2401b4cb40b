"""The REST API's OpenAPI document: every status a route can return, with its body and headers,
and request schemas as tight as JSON Schema can state them.

Routes read their bodies themselves (simdjson, not FastAPI's parsing), so request schemas are
declared here, by name, and built once at start-up from the pydantic request models plus what
only the served models know (model names, image shape, class count) and the row limit. Rules
JSON Schema cannot state (labels as long as the predictions, class ids below the class count, a
decodable image, a tensor's data as long as its shape says) are checked by the service and
answered 400; docs/security.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.codecs.tensors import DATATYPES
from service.dataplane import Activation
from service.losses import LOSSES, REDUCTIONS
from service.repository import ModelRepository
from service.rest.schemas import ErrorBody, LossBody, PredictBody, PredictForm, V2ErrorBody
from service.security.credentials import API_KEY_HEADER, is_open_http_path

__all__ = ["REF", "body", "install_openapi", "ok", "responses"]

REF = "#/components/schemas/{model}"
DESCRIPTIONS = {
    400: "A well-formed request the service cannot serve: a shape, range, label, image or "
    "name is wrong (the message names the field), or the body is not valid JSON.",
    401: "Missing or invalid credentials.",
    404: "No such model or version.",
    413: "The body or the number of rows is over the limit.",
    422: "The body does not fit the schema: a wrong JSON type or an unknown field.",
    500: "The model run this request was batched into failed (the cause is logged).",
    503: "Not ready, shutting down, or the model's queue is full (then with Retry-After).",
    504: "The request's deadline or the request timeout passed before it was served.",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (when the queue was full).",
        "schema": {"type": "integer"},
    }
}


def responses(*statuses: int, v2: bool = False) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the error ``statuses`` a route can answer, each with the
    error body of its API (the protocol's own under ``/v2``)."""
    model = V2ErrorBody if v2 else ErrorBody
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        documented[status] = {"model": model, "description": DESCRIPTIONS[status]}
        if status == 503:
            documented[status]["headers"] = RETRY_AFTER
    return documented


def body(json_schema: str, multipart_schema: str | None = None) -> dict[str, Any]:
    """FastAPI ``openapi_extra=`` declaring a required request body of the named schemas."""
    content = {"application/json": {"schema": {"$ref": REF.format(model=json_schema)}}}
    if multipart_schema is not None:
        content["multipart/form-data"] = {"schema": {"$ref": REF.format(model=multipart_schema)}}
    return {"requestBody": {"required": True, "content": content}}


def ok(schema: str | None, media_type: str = "application/json") -> dict[int | str, Any]:
    """FastAPI ``responses=`` for a 200 whose body is the named component schema (``None``:
    no body at all)."""
    if schema is None:
        return {200: {"description": "OK (no body)"}}
    return {200: {"content": {media_type: {"schema": {"$ref": REF.format(model=schema)}}}}}


def install_openapi(
    app: FastAPI, repository: ModelRepository, max_rows: int, *, access_control: bool = False
) -> None:
    """Make ``app.openapi()`` return the document, built on first use; with
    ``access_control``, every operation that needs a key says so and documents its 401."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _drop_undeclared_422(document)
            _version_parameters(document)
            document["components"]["schemas"].update(_request_schemas(repository, max_rows))
            if access_control:
                _require_keys(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _require_keys(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key."},
        "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
    }
    for path, operations in document["paths"].items():
        if is_open_http_path(path):
            continue
        v2 = path.startswith("/v2")
        for operation in operations.values():
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            unauthorized = responses(401, v2=v2)[401]
            schema = {"$ref": REF.format(model=unauthorized.pop("model").__name__)}
            unauthorized["content"] = {"application/json": {"schema": schema}}
            unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
            operation["responses"]["401"] = unauthorized


def _drop_undeclared_422(document: dict[str, Any]) -> None:
    """FastAPI documents a 422 with its own body on every route with parameters; here a 422
    exists only where a route declares it, with the service's error body."""
    for path in document["paths"].values():
        for operation in path.values():
            answer = operation["responses"].get("422", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        document["components"]["schemas"].pop(name, None)


VERSION_PATTERN = "^[0-9]+$"
"""Model versions are whole numbers (the repository's folder names)."""


def _version_parameters(document: dict[str, Any]) -> None:
    for path in document["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "version":
                    parameter["schema"] = {"type": "string", "pattern": VERSION_PATTERN}


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


def _request_schemas(repository: ModelRepository, rows: int) -> dict[str, Any]:
    models = list(repository)
    shapes = {m.image_shape for m in models}
    most_classes = max(m.num_classes for m in models)
    names = repository.names()
    several = len(names) > 1
    model: dict[str, Any] = {"type": "string", "enum": names}
    version: dict[str, Any] = {
        "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]*$"}]
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
    schemas.update(_v2_schemas(repository, rows))
    return schemas


def _v2_schemas(repository: ModelRepository, rows: int) -> dict[str, Any]:
    parameters = {"type": "object", "additionalProperties": True}
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "anyOf": [  # the values inline, or their size in the binary part of the body
            {"required": ["data"]},
            {
                "required": ["parameters"],
                "properties": {"parameters": {"required": ["binary_data_size"]}},
            },
        ],
        "properties": {
            "name": {"type": "string", "enum": sorted({m.input.name for m in repository})},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "parameters": parameters,
            "data": {"type": "array"},
        },
    }
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": parameters},
    }
    request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": parameters,
            "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
            "outputs": {"type": "array", "items": output},
        },
    }
    response_tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": parameters,
            "data": {"type": "array", "items": {"type": "number"}},
        },
    }
    response = {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": parameters,
            "outputs": {"type": "array", "items": response_tensor},
        },
    }
    metadata_tensor = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    server = {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    }
    model = {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": metadata_tensor},
            "outputs": {"type": "array", "items": metadata_tensor},
        },
    }
    return {
        "V2InferRequest": request,
        "V2InferResponse": response,
        "V2ServerMetadata": server,
        "V2ModelMetadata": model,
    }
