"""Access control and TLS for the gRPC server, installed only when configured.

:class:`ApiKeyInterceptor` checks each call's metadata (``authorization: Bearer KEY`` or
``x-api-key: KEY``) before the call reaches a servicer; the open methods
(``service.security.credentials``) pass without a key. A call with a key in force gets the
method's own handler back, unchanged (nothing is built per call); a refused one gets a handler
that ends it with UNAUTHENTICATED without parsing its request, and is counted in the request
metrics like any other call (the error wrapper of ``service.grpc.errors`` never sees it).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from service.errors import UnauthenticatedError
from service.grpc._typing import Context
from service.grpc.errors import status_for
from service.security import ApiKeys, TlsFiles
from service.security.credentials import is_open_grpc_method, presented_key_in_metadata
from service.telemetry import Telemetry

__all__ = ["ApiKeyInterceptor", "server_credentials"]

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """TLS with the service's certificate; with client CAs, client certificates required."""
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.mutual,
    )


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Refuse calls without a key in force (see the module's docstring)."""

    def __init__(self, keys: ApiKeys, telemetry: Telemetry) -> None:
        self.keys, self.telemetry = keys, telemetry
        error = UnauthenticatedError()
        self._code, self._message = status_for(error), error.message

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        started = time.perf_counter()
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or is_open_grpc_method(method):
            return handler
        metadata = handler_call_details.invocation_metadata
        if self.keys.verify(presented_key_in_metadata(metadata)):
            return handler
        self.telemetry.observe_request(
            "grpc", method, self._code.name, time.perf_counter() - started
        )
        return self._refusal(handler)

    def _refusal(self, handler: Handler) -> Handler:
        code, message = self._code, self._message

        async def refuse(request: Any, context: Context) -> None:
            await context.abort(code, message)

        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make: Any = kinds[(handler.request_streaming, handler.response_streaming)]
        # No request deserializer: a refused call's request is never parsed.
        return make(refuse, response_serializer=handler.response_serializer)  # type: ignore[no-any-return]
