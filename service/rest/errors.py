"""The one place domain errors become HTTP responses.

Body shape: ``{"error": {"code": "...", "message": "..."}}`` for the project's API, and the
Open Inference Protocol's own ``{"error": "..."}`` under ``/v2`` (clients such as
tritonclient read that key as a string). Unknown exceptions become a 500 with a generic
message; the traceback goes to the log only.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from service.errors import (
    DeadlineExceededError,
    InferenceFailedError,
    InvalidInputError,
    ModelControlError,
    NotFoundError,
    OverloadedError,
    RequestTooLargeError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
    "HTTP_STATUS",
    "error_response",
    "install_error_handlers",
    "response_for",
    "service_error_response",
    "validation_message",
]

log = logging.getLogger(__name__)

HTTP_STATUS: dict[type[ServiceError], int] = {
    InvalidInputError: 400,
    UnauthenticatedError: 401,
    NotFoundError: 404,
    ModelControlError: 400,
    RequestTooLargeError: 413,
    OverloadedError: 503,
    UnavailableError: 503,
    DeadlineExceededError: 504,
    InferenceFailedError: 500,
}
HTTP_CODES = {
    400: "invalid_argument",
    404: "not_found",
    405: "method_not_allowed",
    413: "resource_exhausted",
}


def status_for(error: ServiceError) -> int:
    """The HTTP status of a domain error (500 for an unmapped subclass)."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


V2_PREFIX = "/v2"


def error_response(
    status: int, code: str, message: str, path: str = "", headers: dict[str, str] | None = None
) -> Response:
    """The error body for ``path``: the protocol's shape under ``/v2``, else the project's."""
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        body = orjson.dumps({"error": message})
    else:
        body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def service_error_response(exc: ServiceError, path: str) -> Response:
    """The response to a domain error, with the headers its kind calls for."""
    headers = None
    if isinstance(exc, OverloadedError):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    elif isinstance(exc, UnauthenticatedError):
        headers = {"WWW-Authenticate": exc.challenge}
    return error_response(status_for(exc), exc.code, exc.message, path, headers)


def validation_message(errors: list[dict[str, object]]) -> str:
    """Pydantic errors as ``field: problem`` sentences, the field given as a dotted path."""
    parts = []
    for error in errors[:5]:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query")]  # type: ignore[attr-defined]
        field = ".".join(location) or "body"
        parts.append(f"{field}: {error.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def response_for(exc: Exception, request: Request) -> Response:
    """The error response for an exception a route raised: the one mapping, used by the
    app's exception handlers and by the hot routes' lane (:mod:`service.rest.hot_routes`)."""
    path = request.url.path
    if isinstance(exc, ServiceError):
        return service_error_response(exc, path)
    if isinstance(exc, RequestValidationError):
        return error_response(422, "invalid_request", validation_message(list(exc.errors())), path)
    if isinstance(exc, ValidationError):
        message = validation_message(list(exc.errors(include_url=False)))  # type: ignore[arg-type]
        return error_response(422, "invalid_request", message, path)
    if isinstance(exc, HTTPException):
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None  # e.g. a 405's Allow
        return error_response(exc.status_code, code, str(exc.detail), path, headers)
    log.exception("unhandled error in %s %s", request.method, path, exc_info=exc)
    return error_response(500, "internal", "internal server error", path)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""

    async def handle(request: Request, exc: Exception) -> Response:
        return response_for(exc, request)

    for kind in (ServiceError, RequestValidationError, ValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handle)
