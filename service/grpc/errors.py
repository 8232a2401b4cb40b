"""The one place domain errors become gRPC status codes, as a server interceptor.

Also records each call in the service's metrics. Unknown exceptions become INTERNAL with a
generic message (the traceback goes to the log only), as KServe's interceptor does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.errors import (
    InvalidInputError,
    NotFoundError,
    RequestTooLargeError,
    ServiceError,
    UnavailableError,
)
from service.grpc._typing import Context
from service.telemetry import Telemetry

__all__ = ["GRPC_STATUS", "ErrorInterceptor", "status_for"]

log = logging.getLogger(__name__)

GRPC_STATUS: dict[type[ServiceError], grpc.StatusCode] = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    RequestTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnavailableError: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a domain error (INTERNAL for an unmapped subclass)."""
    for kind in type(error).__mro__:
        if kind in GRPC_STATUS:
            return GRPC_STATUS[kind]
    return grpc.StatusCode.INTERNAL


class _Call:
    """Maps an exception to a status and records the call's outcome."""

    def __init__(self, telemetry: Telemetry, method: str) -> None:
        self.telemetry, self.method, self.started = telemetry, method, time.perf_counter()
        self.code = grpc.StatusCode.OK

    async def fail(self, context: Context, exc: BaseException) -> None:
        if isinstance(exc, ServiceError):
            self.code = status_for(exc)
            await context.abort(self.code, exc.message)
        self.code = grpc.StatusCode.INTERNAL
        log.error("unhandled error in %s", self.method, exc_info=exc)
        await context.abort(self.code, "internal server error")

    def done(self, context: Context) -> None:
        code = context.code() if self.code is grpc.StatusCode.OK else self.code
        name = code.name if isinstance(code, grpc.StatusCode) else "OK"
        self.telemetry.observe_request(
            "grpc", self.method, name, time.perf_counter() - self.started
        )


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary and streaming handler."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        # grpc's type stubs describe synchronous handlers only; aio handlers are typed loosely.
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        telemetry = self.telemetry
        if handler.unary_unary is not None:
            behavior = handler.unary_unary

            async def unary(request: Any, context: Context) -> Any:
                call = _Call(telemetry, method)
                try:
                    return await behavior(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await call.fail(context, exc)
                finally:
                    call.done(context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            streaming = handler.stream_stream

            async def stream(requests: Any, context: Context) -> AsyncIterator[Any]:
                call = _Call(telemetry, method)
                try:
                    async for response in streaming(requests, context):
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await call.fail(context, exc)
                finally:
                    call.done(context)

            return grpc.stream_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # unary-stream (health Watch): passed through untouched
