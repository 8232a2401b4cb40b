"""``python -m service`` with its REST listener served by granian (Rust: hyper and tokio),
embedded on the serving process's own event loop in place of uvicorn; gRPC, the data plane
and every flag unchanged. Run by ``bench.rest_front`` with granian on ``PYTHONPATH``; it is a
measured alternative, not a way to run the service."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import uvicorn
from granian.constants import HTTPModes, Interfaces  # type: ignore[import-not-found]
from granian.server.embed import Server  # type: ignore[import-not-found]

import service.listeners
import service.server
from service.cli import main

RUNTIME_THREADS = int(os.environ.get("GRANIAN_RUNTIME_THREADS", "1"))


class GranianFront:
    """What :func:`service.server.serve` asks of its REST server (``serve``, ``started``,
    ``should_exit``), done by an embedded granian over the same ASGI app."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.app = config.app
        self.started = False
        self._server: Any = None

    async def serve(self, sockets: list[socket.socket]) -> None:
        host, port = sockets[0].getsockname()[:2]
        self._server = Server(
            self.app, address=host, port=port, interface=Interfaces.ASGINL,
            runtime_threads=RUNTIME_THREADS, http=HTTPModes.http1, log_access=False,
        )  # fmt: skip
        task = asyncio.create_task(self._server.serve())
        while not task.done() and not _accepts(host, port):
            await asyncio.sleep(0.05)
        self.started = not task.done()
        await task

    @property
    def should_exit(self) -> bool:
        return self._server is not None and bool(self._server.interrupt_signal)

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value and self._server is not None:
            self._server.interrupt_signal = True
            self._server.main_loop_interrupt.set()


class _Address:
    """Stands for the listening socket ``serve_here`` would bind: granian binds its own, and
    the service only asks this one its address."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)

    def getsockname(self) -> tuple[str, int]:
        return self.address

    def close(self) -> None:
        pass


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    service.server._RestServer = GranianFront  # type: ignore[misc,assignment]
    service.listeners.bind_http_socket = _Address  # type: ignore[assignment]
    sys.exit(main())
