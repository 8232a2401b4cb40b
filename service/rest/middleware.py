"""ASGI middleware: the body limit and request metrics (deadlines: ``service.rest.deadline``)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import RequestTooLargeError
from service.rest.errors import error_response
from service.telemetry import Telemetry

__all__ = ["CLIENT_CLOSED", "BodySizeLimit", "RequestMetrics"]

CLIENT_CLOSED = 499
"""The status metrics record for a request whose client went away before it was answered
(nginx's convention; nothing is sent)."""


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413: at once when Content-Length says so, else as
    soon as the streamed body passes the limit (raised where the body is read)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self) -> str:
        return f"request body exceeds the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, "resource_exhausted", self._message(), scope["path"])
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise RequestTooLargeError(self._message(), field="body")
            return message

        await self.app(scope, limited_receive, send)


class RequestMetrics:
    """Count and time every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": CLIENT_CLOSED}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            status["code"] = 500  # answered by Starlette's outermost error handler
            raise
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self.telemetry.observe_request(
                "http", endpoint, str(status["code"]), time.perf_counter() - started
            )
