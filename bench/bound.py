"""The Python-front bound: the most requests a second that any server with a Python front of
this kind can answer on this machine, measured in the same run as the benchmark.

Per transport, a null server under the same h2load load as the benchmark (gRPC: the null
``grpc.aio`` server of :mod:`bench.null_grpc`, 32 in flight; REST: the bare ASGI app on uvicorn
of :mod:`bench.null_asgi`, 16 in flight, the V2 REST JSON body), its own CPU microseconds per
call read from /proc (all its threads), h2load's CPU per call (the load generator shares these
cores in every measurement of the benchmark), and the model's CPU microseconds per image
(onnxruntime alone, one thread, the best of batch 1 and batch 32 per image). Then

    bound = cores × 10⁶ / (null server's µs + h2load's µs per call + model's µs per image)

— every core busy with the framework's work, the load generator's and the model's alone,
nothing of a service's own (decoding, validation, batching, hand-offs)."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench._models import one_thread_session
from bench._timing import median_ms
from bench.loadgen import LoadResult, h2load
from service.launcher import REPO, free_port, stop_process, wait_until_ready
from service.lifetime import die_with_parent

__all__ = [
    "BOUND_CONCURRENCY",
    "Bound",
    "bound_rps",
    "measure_null_server",
    "model_us_per_image",
    "running_null_asgi",
    "running_null_grpc",
]

BOUND_CONCURRENCY = {"gRPC": 32, "REST": 16}
"""Requests in flight on each null server: the benchmark's headline point for each transport."""
TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP = 0.5


def bound_rps(cores: int, server_us: float, model_us: float, load_us: float = 0.0) -> float:
    """Requests a second when ``cores`` cores do nothing but the null server's work
    (``server_us`` CPU microseconds a call), the load generator's (``load_us``) and the
    model's (``model_us`` an image)."""
    return cores * 1e6 / (server_us + load_us + model_us)


@dataclass(frozen=True)
class Bound:
    """One transport's bound and what it was computed from."""

    transport: str
    """``gRPC`` or ``REST``."""
    server: str
    """The null server measured."""
    concurrency: int
    null_rps: float
    """What the null server answered under the load (h2load sharing the cores)."""
    server_us: float
    """The null server's own CPU microseconds per call."""
    load_us: float
    """h2load's CPU microseconds per call."""
    model_us: float
    """onnxruntime alone, one thread: microseconds per image (best of batch 1 and 32)."""
    cores: int

    @property
    def rps(self) -> float:
        return bound_rps(self.cores, self.server_us, self.model_us, self.load_us)


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``, all its threads, ended ones included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure_null_server(
    pid: int,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    http1: bool,
) -> tuple[LoadResult, float, float]:
    """A load run on the server ``pid`` at ``url``: the result, the server's CPU microseconds
    per call and h2load's. The CPU counters also cover the warm-up, so the request count is
    scaled to match (as :mod:`bench.cpu_profile` does)."""
    before = process_cpu_seconds(pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = h2load(url, body, headers, concurrency=concurrency, seconds=seconds,
                    warm_up=WARM_UP, http1=http1)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = process_cpu_seconds(pid) - before
    load = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    requests = result.requests * (seconds + WARM_UP) / seconds
    return result, 1e6 * server / requests, 1e6 * load / requests


def model_us_per_image(model_file: Path) -> float:
    """Median microseconds per image through onnxruntime alone, one thread: the better of one
    image a run and 32 a run (batching saves a little per image)."""
    session = one_thread_session(model_file)
    name = session.get_inputs()[0].name
    costs = []
    for size, runs in ((1, 500), (32, 40)):
        images = np.zeros((size, 32, 32, 3), np.float32)
        feed = {name: images}
        costs.append(1e3 * median_ms(partial(session.run, None, feed), runs) / size)
    return min(costs)


def _wait_for_port(process: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"null server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"null server not listening after {timeout:.0f} s") from None
            time.sleep(0.1)


@contextmanager
def running_null_grpc(
    kind: str = "aio", env: dict[str, str] | None = None
) -> Iterator[tuple[int, int]]:
    """The null gRPC server of ``kind`` (see :mod:`bench.null_grpc`; default ``grpc.aio``) as
    its own process: (pid, port) when entered."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.null_grpc", str(port), kind],
                               cwd=REPO, preexec_fn=die_with_parent, env=env)  # fmt: skip
    try:
        _wait_for_port(process, port)
        yield process.pid, port
    finally:
        stop_process(process)


@contextmanager
def running_null_asgi() -> Iterator[tuple[int, int]]:
    """The null ASGI app on uvicorn as its own process: (pid, port) when entered."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.null_asgi", str(port)], cwd=REPO,
                               preexec_fn=die_with_parent)  # fmt: skip
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/", 30, lambda: "bench.null_asgi")
        yield process.pid, port
    finally:
        stop_process(process)
