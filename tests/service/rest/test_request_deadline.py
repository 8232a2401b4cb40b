"""RequestDeadline: 504 only for its own timeout (a TimeoutError the app raises itself is the
app's failure, 500); a client that leaves cancels its request, but only once the body has been
read and only if it is not answered; the one sweep works on every event loop and stops when
no request is open."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.rest.deadline import WATCH_AFTER, RequestDeadline


async def slow(request: Request) -> Response:
    await asyncio.sleep(5)
    return Response("late")


async def own_timeout(request: Request) -> Response:
    raise TimeoutError("the app's own")


APP = Starlette(routes=[Route("/slow", slow), Route("/own", own_timeout)])


@pytest.mark.parametrize(("timeout", "path", "status"), [(0.2, "/slow", 504), (0.0, "/own", 500), (5.0, "/own", 500)])  # fmt: skip
def test_only_the_request_timeout_is_a_504(timeout: float, path: str, status: int) -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(
            app=RequestDeadline(APP, timeout), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    assert asyncio.run(call()).status_code == status


class Client:
    """A raw ASGI client: sends ``chunks`` of body ``gap`` seconds apart, then reports a
    disconnect after ``leave_after`` seconds (never, if ``None``); records what is sent."""

    def __init__(
        self, chunks: list[bytes], gap: float = 0.0, leave_after: float | None = None
    ) -> None:
        self.chunks, self.gap, self.leave_after = list(chunks), gap, leave_after
        self.sent: list[dict[str, object]] = []

    async def receive(self) -> dict[str, object]:
        if self.chunks:
            if self.gap:
                await asyncio.sleep(self.gap)
            body = self.chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}
        if self.leave_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.leave_after or 0)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, object]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> object:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)


SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": []}


def echo_after(delay: float, ran: list[str], linger: float = 0.0) -> ASGIApp:
    """An app that reads the whole body, works ``delay`` seconds and echoes it, then goes on
    for ``linger`` seconds (as an app may after its response, e.g. background work)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            ran.append("cancelled")
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        await asyncio.sleep(linger)
        ran.append("answered")

    return app


def test_a_slow_upload_reaches_the_app_whole() -> None:
    """Disconnects are only watched for once the body has been read: a body that takes longer
    than ``watch_after`` to arrive is not taken from the app by the watcher."""
    ran: list[str] = []
    client = Client([b"a", b"b", b"c", b"d"], gap=WATCH_AFTER, leave_after=None)
    middleware = RequestDeadline(echo_after(0.2, ran), timeout=5)
    asyncio.run(middleware(SCOPE, client.receive, client.send))
    assert client.status == 200
    assert client.sent[-1]["body"] == b"abcd"
    assert ran == ["answered"]


def test_a_client_that_leaves_cancels_its_request_within_the_watch_interval() -> None:
    ran: list[str] = []
    client = Client([b"x"], leave_after=0.0)

    async def call() -> float:
        started = time.monotonic()
        await RequestDeadline(echo_after(10, ran), timeout=0)(SCOPE, client.receive, client.send)
        return time.monotonic() - started

    took = asyncio.run(call())
    assert ran == ["cancelled"]
    assert client.sent == []  # nobody to answer
    assert took < 2 * WATCH_AFTER + 0.5


def test_a_request_answered_before_its_client_leaves_is_not_cancelled() -> None:
    ran: list[str] = []
    client = Client([b"x"], leave_after=0.0)
    app = echo_after(0.0, ran, linger=3 * WATCH_AFTER)
    asyncio.run(RequestDeadline(app, timeout=0)(SCOPE, client.receive, client.send))
    assert ran == ["answered"]
    assert client.status == 200


@pytest.mark.parametrize("timeout", [0.02, 0.3])  # shorter and longer than WATCH_AFTER
def test_the_deadline_holds_on_every_event_loop_and_stops_sweeping_when_idle(
    timeout: float,
) -> None:
    """One middleware serves requests on successive event loops (as test clients and
    restarted servers do): each loop's requests expire within a tick of their deadline, and
    once no request is open nothing stays scheduled."""
    middleware = RequestDeadline(echo_after(10, []), timeout=timeout)

    async def call(idle_after: float) -> tuple[Client, float]:
        client = Client([b"x"])
        started = time.monotonic()
        await middleware(SCOPE, client.receive, client.send)
        took = time.monotonic() - started
        await asyncio.sleep(idle_after)
        return client, took

    # The first loop ends with a sweep still scheduled on it; the second must sweep anyway.
    for idle_after in (0.0, 2 * WATCH_AFTER):
        client, took = asyncio.run(call(idle_after))
        assert client.status == 504
        assert timeout <= took < timeout + WATCH_AFTER + 0.5
        assert middleware.open_requests == 0
    assert not middleware.sweeping
