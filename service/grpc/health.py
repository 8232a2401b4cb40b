"""The gRPC health service, with Watch streams that end when the server drains."""

from __future__ import annotations

import asyncio
from typing import Any

from grpc_health.v1 import health, health_pb2

__all__ = ["DrainingHealthServicer"]

DELIVERY_SECONDS = 0.05
"""How long open Watch streams get to send NOT_SERVING before they are ended."""


class DrainingHealthServicer(health.aio.HealthServicer):
    """``grpc.health.v1.Health``; :meth:`drain` reports NOT_SERVING to every watcher and then
    ends the Watch streams, which otherwise never end and so would hold the server's drain for
    its whole grace period (clients with client-side health checking keep one open)."""

    def __init__(self) -> None:
        super().__init__()
        self._watches: set[asyncio.Future[Any]] = set()
        self._draining = False

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        if self._draining:
            await context.write(
                health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
            )
            return
        watch = asyncio.ensure_future(super().Watch(request, context))
        self._watches.add(watch)
        try:
            await watch
        except asyncio.CancelledError:
            if not self._draining:
                raise  # the call itself was cancelled
        finally:
            watch.cancel()
            self._watches.discard(watch)

    async def drain(self) -> None:
        """NOT_SERVING for every service from now on; then end the open Watch streams."""
        self._draining = True
        await self.enter_graceful_shutdown()
        if self._watches:
            await asyncio.sleep(DELIVERY_SECONDS)
            for watch in list(self._watches):
                watch.cancel()
