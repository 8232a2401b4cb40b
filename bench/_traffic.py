"""Steady traffic against a running service while its models change (the lifecycle benchmark
and tests): REST (V2 JSON over httpx) and gRPC (tritonclient's asyncio client) callers, each
with one request in flight, on a thread of their own, counting answers by version, every
failure, and each request's latency."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np
import tritonclient.grpc.aio as triton_aio

IMAGE = np.random.default_rng(3).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)


@dataclass
class Tally:
    """What the callers saw."""

    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


class Traffic:
    """``rest`` + ``grpc`` callers, each with one request in flight, until :meth:`stop`."""

    def __init__(
        self, http_port: int, grpc_port: int, model: str, *, rest: int = 16, grpc: int = 16
    ) -> None:
        self.tally = Tally()
        self._args = (http_port, grpc_port, model, rest, grpc)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Tally:
        self._stop.set()
        self._thread.join(60)
        return self.tally

    async def _run(self) -> None:
        http_port, grpc_port, model, rest, grpc = self._args
        body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                            "data": IMAGE.ravel().tolist()}]}  # fmt: skip
        limits = httpx.Limits(max_connections=max(rest, 1))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", limits=limits, timeout=30
        ) as http:
            client = triton_aio.InferenceServerClient(f"127.0.0.1:{grpc_port}")
            try:
                await asyncio.gather(
                    *(self._rest(http, model, body) for _ in range(rest)),
                    *(self._grpc(client, model) for _ in range(grpc)),
                )
            finally:
                await client.close()

    async def _rest(self, http: httpx.AsyncClient, model: str, body: object) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                answer = await http.post(f"/v2/models/{model}/infer", json=body)
                if answer.status_code == 200:
                    self._count(answer.json()["model_version"], started)
                else:
                    self.tally.failures.append(f"REST {answer.status_code}: {answer.text}")
            except Exception as exc:
                self.tally.failures.append(f"REST {exc!r}")

    async def _grpc(self, client: triton_aio.InferenceServerClient, model: str) -> None:
        data = triton_aio.InferInput("images", list(IMAGE.shape), "UINT8")
        data.set_data_from_numpy(IMAGE)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                result = await client.infer(model, [data])
                self._count(result.get_response().model_version, started)
            except Exception as exc:
                self.tally.failures.append(f"gRPC {exc!r}")

    def _count(self, version: str, started: float) -> None:
        self.tally.versions[version] += 1
        self.tally.latencies.append(time.perf_counter() - started)
