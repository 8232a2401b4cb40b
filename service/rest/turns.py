"""REST requests take turns, so that a flood of them cannot starve gRPC on the shared loop.

REST and gRPC share one event loop. ``grpc.aio`` accepts one new call per round trip through
the loop, while uvicorn works on every connection that has data: a flood of REST clients that
are refused and retry at once fills every loop iteration with refusals, and gRPC calls wait
seconds even to be accepted (measured with 64 REST clients beside 16 gRPC ones and a queue
of 8: gRPC got 6 answers/s, and waited 1.5 s even to be refused). So at most ``slots`` REST
requests are in progress at once, each from the moment its body has arrived (a slow upload
holds no turn) until it is answered; the others wait, in order, without costing the loop
anything. ``slots`` is at most a REST lane's fair share of the queue, so a REST request that
has its turn is not refused for lack of room while gRPC sends too: the REST flood runs at the
model's pace instead of refusing in a tight loop. At most ``backlog`` requests wait; past
that one is refused at once (503 + ``Retry-After``), as a full model queue refuses. Requests
without a body (health, metadata, metrics) never wait.
"""

from __future__ import annotations

import asyncio
from collections import deque

from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.dataplane.entry import REST_LANE, enter_lane
from service.errors import OverloadedError

__all__ = ["RestTurns"]


class RestTurns:
    """ASGI middleware: REST requests take turns (see the module docstring)."""

    def __init__(self, app: ASGIApp, slots: int, backlog: int, waiting: Gauge) -> None:
        self.app, self.slots, self.backlog = app, slots, backlog
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._waiting = waiting
        """The gauge of requests waiting for a turn."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        enter_lane(REST_LANE)
        holding = asked = False

        async def receive_in_turn() -> Message:
            nonlocal holding, asked
            message = await receive()
            if not asked and message["type"] == "http.request" and not message.get("more_body"):
                asked = True  # one turn per request, once its whole body is here
                await self._take()
                holding = True
            return message

        try:
            await self.app(scope, receive_in_turn, send)
        finally:
            if holding:
                self._give()

    async def _take(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        if len(self._waiters) >= self.backlog:
            self._waiters = deque(w for w in self._waiters if not w.done())
            if len(self._waiters) >= self.backlog:
                raise OverloadedError(
                    f"{len(self._waiters)} REST requests are waiting for their turn (the "
                    "limit); retry later"
                )
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._waiting.inc()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give()  # the turn came as the request was cancelled: pass it on
            else:
                waiter.cancel()
            raise
        finally:
            self._waiting.dec()

    def _give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the turn passes straight to the next in line
                return
        self._free += 1
