"""What the service tests share: the test models' constants, image encoders, and the real
servers run in-process on a background event loop."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from service.dataplane import DataPlane
from service.execution import plan_threads
from service.launcher import free_port
from service.listeners import bind_http_socket
from service.server import serve, start_dataplane
from service.settings import Settings

CLASSES = [f"thing-{i}" for i in range(10)]
MAX_ROWS = 64
MAX_BODY = 1 << 20
T = TypeVar("T")


def encode(image: np.ndarray, fmt: str = "PNG", **save: object) -> bytes:
    """One image as a PNG (or ``fmt``) file."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class InProcessService:
    """``python -m service``'s start-up and servers (REST on uvicorn, gRPC, the data plane and
    its model process) in this process, on an event loop of their own thread, on free loopback
    ports. Tests talk to it with real clients and may call the data plane with :meth:`call`."""

    def __init__(self, repository: Path, **settings: Any) -> None:
        self.settings = Settings.model_validate(
            {
                "model_repository": repository,
                "host": "127.0.0.1",
                "grpc_port": free_port(),
                "device": "cpu",
                "log_level": "warning",
                **settings,
            }
        )
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.plane: DataPlane | None = None
        self.http_port = 0
        self._thread = threading.Thread(target=self._run, name="in-process-service", daemon=True)

    @property
    def url(self) -> str:
        scheme = "http" if self.settings.tls_cert_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.settings.grpc_port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        plan = plan_threads(
            cpus=2, workers=1, model_processes=1, intra_op_threads=1, executor_threads=1
        )
        self.plane = await start_dataplane(self.settings, plan)
        http_socket = bind_http_socket("127.0.0.1", 0)
        self.http_port = http_socket.getsockname()[1]
        self._stop = asyncio.Event()
        await serve(
            self.settings, self.plane, http_socket, stop=self._stop, on_ready=self._ready.set
        )

    def start(self) -> InProcessService:
        self._thread.start()
        if not self._ready.wait(120) or self._failure is not None:
            raise RuntimeError(f"the in-process service did not start: {self._failure!r}")
        return self

    def __enter__(self) -> InProcessService:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coroutine`` on the service's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self.loop.close()


def metric(url: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with ``labels`` on ``url``'s /metrics (0 if absent)."""
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
