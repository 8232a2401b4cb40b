"""The one place domain errors become gRPC status codes, and gRPC calls are counted.

Every RPC method of the project's services is wrapped once, when the server is built (a server
interceptor would build new handlers on every call). Unknown exceptions become INTERNAL with a
generic message; the traceback goes to the log only, as KServe's interceptor does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from service.dataplane.entry import GRPC_LANE, enter_lane
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
from service.grpc._typing import Context
from service.telemetry import Telemetry

__all__ = ["GRPC_STATUS", "guarded", "request_error_message", "status_for"]

log = logging.getLogger(__name__)

GRPC_STATUS: dict[type[ServiceError], grpc.StatusCode] = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    ModelControlError: grpc.StatusCode.FAILED_PRECONDITION,
    RequestTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    OverloadedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnavailableError: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    InferenceFailedError: grpc.StatusCode.INTERNAL,
}


def status_for(error: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a domain error (INTERNAL for an unmapped subclass)."""
    for kind in type(error).__mro__:
        if kind in GRPC_STATUS:
            return GRPC_STATUS[kind]
    return grpc.StatusCode.INTERNAL


class _Calls:
    """Outcome and duration of one RPC method's calls."""

    def __init__(self, telemetry: Telemetry, endpoint: str) -> None:
        self._telemetry, self.endpoint = telemetry, endpoint

    def record(self, status: str, started: float) -> None:
        self._telemetry.observe_request(
            "grpc", self.endpoint, status, time.perf_counter() - started
        )

    def outcome(self, exc: Exception) -> tuple[grpc.StatusCode, str]:
        """The status and message a failed call ends with (internal details go to the log)."""
        if isinstance(exc, ServiceError):
            return status_for(exc), _domain_message(exc, self.endpoint)
        log.error("unhandled error in %s", self.endpoint, exc_info=exc)
        return grpc.StatusCode.INTERNAL, "internal server error"


def _domain_message(error: ServiceError, endpoint: str) -> str:
    """A domain error's message as callers read it; one that means a server fault is logged."""
    if status_for(error) is grpc.StatusCode.INTERNAL and not isinstance(
        error, InferenceFailedError
    ):
        log.error("%s failed: %s", endpoint, error.message)
    return _fit_in_trailers(error.message)


def request_error_message(exc: Exception, endpoint: str) -> str:
    """The message that answers one failed request of a stream that goes on (Triton's
    ``ModelStreamInferResponse.error_message``): a domain error's message, exactly as the
    unary call's status details read; anything else is logged with its traceback and reported
    as :class:`InferenceFailedError`'s generic message."""
    if isinstance(exc, ServiceError):
        return _domain_message(exc, endpoint)
    log.error("unhandled error in %s", endpoint, exc_info=exc)
    return InferenceFailedError().message


MAX_DETAILS = 400
"""Characters of an error message sent as a call's status details. Messages quote the caller's
input, and details travel percent-encoded in the trailers, which clients cap at 8 KiB: a longer
message would replace the real status with RESOURCE_EXHAUSTED."""


def _fit_in_trailers(message: str) -> str:
    return message if len(message) <= MAX_DETAILS else message[: MAX_DETAILS - 1] + "…"


class _Guard:
    """``async with``: an RPC's exception mapped to its status, and the call recorded."""

    __slots__ = ("_calls", "_context", "_started")

    def __init__(self, calls: _Calls, context: Context) -> None:
        self._calls, self._context, self._started = calls, context, time.perf_counter()

    async def __aenter__(self) -> None:
        enter_lane(GRPC_LANE)

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, trace: Any) -> bool:
        if exc is None:
            self._calls.record("OK", self._started)
        elif isinstance(exc, asyncio.CancelledError):
            self._calls.record("CANCELLED", self._started)
        elif isinstance(exc, grpc.aio.AbortError):  # the servicer aborted the call itself
            code = self._context.code()
            self._calls.record(code.name if code else "UNKNOWN", self._started)
        elif isinstance(exc, Exception):
            code, message = self._calls.outcome(exc)
            self._calls.record(code.name, self._started)
            await self._context.abort(code, message)  # raises AbortError in its place
        return False


def _unary(method: Callable[..., Any], calls: _Calls) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> Any:
        async with _Guard(calls, context):
            return await method(request, context)

    return handler


def _streaming(method: Callable[..., AsyncIterator[Any]], calls: _Calls) -> Callable[..., Any]:
    async def handler(requests: Any, context: Context) -> AsyncIterator[Any]:
        async with _Guard(calls, context):
            async for response in method(requests, context):
                yield response

    return handler


def guarded(servicer: object, service: ServiceDescriptor, telemetry: Telemetry) -> Any:
    """``servicer`` with each RPC of ``service`` wrapped: errors mapped, calls counted."""
    methods = {}
    for rpc in service.methods:
        method = getattr(servicer, rpc.name)
        calls = _Calls(telemetry, f"/{service.full_name}/{rpc.name}")
        if rpc.client_streaming or rpc.server_streaming:
            methods[rpc.name] = _streaming(method, calls)
        else:
            methods[rpc.name] = _unary(method, calls)
    return SimpleNamespace(**methods)
