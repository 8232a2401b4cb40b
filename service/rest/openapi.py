"""The REST API's OpenAPI document: every status a route can return, with its body and headers,
and request schemas as tight as JSON Schema can state them.

Routes read their bodies themselves (simdjson, not FastAPI's parsing), so they name their
request schemas, which ``service/rest/request_schemas.py`` builds once at start-up.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.repository import LABEL, ModelRepository
from service.rest.request_schemas import REF, request_schemas
from service.rest.schemas import CONTROL_BODIES, ErrorBody, V2ErrorBody
from service.security.credentials import API_KEY_HEADER, is_open_http_path

__all__ = ["REF", "body", "install_openapi", "ok", "responses"]

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
    """Make ``app.openapi()`` return the document, built on first use and again when the
    served models change (their names and shapes are in the request schemas); with
    ``access_control``, every operation that needs a key says so and documents its 401."""

    built = [-1]  # the repository generation the document describes

    def openapi() -> dict[str, Any]:
        stale = built[0] != repository.generation and bool(repository.names())
        if app.openapi_schema is None or stale:
            built[0] = repository.generation
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _drop_undeclared_422(document)
            _version_parameters(document)
            document["components"]["schemas"].update(request_schemas(repository, max_rows))
            for body in CONTROL_BODIES:
                document["components"]["schemas"][body.__name__] = body.model_json_schema()
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


VERSION_PATTERN = f"^([0-9]+|{LABEL.pattern})$"
"""Model versions are whole numbers (the repository's folder names) or labels."""


def _version_parameters(document: dict[str, Any]) -> None:
    for path in document["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "version":
                    parameter["schema"] = {"type": "string", "pattern": VERSION_PATTERN}
