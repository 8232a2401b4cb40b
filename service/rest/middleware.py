"""ASGI middleware: request deadline and disconnects, body limit, and request metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import DeadlineExceededError, RequestTooLargeError
from service.rest.errors import error_response, service_error_response
from service.telemetry import Telemetry

__all__ = ["CLIENT_CLOSED", "BodySizeLimit", "RequestDeadline", "RequestMetrics"]

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


class RequestDeadline:
    """Bound each request's time, and stop work nobody waits for.

    A request still unanswered after ``timeout`` seconds (0: no limit) is cancelled and
    answered 504; one whose client disconnects is cancelled. Either way, cancelling removes
    it from its model's queue, so it never runs. The disconnect is noticed by a task that waits
    for the next ASGI message once the body has been read: then the server sends nothing but
    ``http.disconnect``. The request runs in the server's own task (a task per request more
    would cost about 5% of REST throughput)."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app, self.timeout = app, timeout or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = asyncio.current_task()
        assert request is not None
        state = {"started": False, "answered": False, "gone": False}
        watcher: asyncio.Task[None] | None = None

        async def disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state["answered"]:
                state["gone"] = True
                request.cancel()

        async def tracking_receive() -> Message:
            nonlocal watcher
            message = await receive()
            last = message["type"] != "http.request" or not message.get("more_body", False)
            if last and watcher is None:
                watcher = asyncio.ensure_future(disconnect())
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["answered"] = True
            await send(message)

        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                await self.app(scope, tracking_receive, tracking_send)
        except TimeoutError:
            if not deadline.expired():
                raise  # the app's own, not the request timeout
            if not state["started"]:
                error = DeadlineExceededError(f"the request took longer than {self.timeout:g} s")
                await service_error_response(error, scope["path"])(scope, receive, send)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            request.uncancel()  # the client went away: there is no one to answer
        finally:
            if watcher is not None:
                watcher.cancel()


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
