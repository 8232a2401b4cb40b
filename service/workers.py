"""Several serving processes sharing the ports (``--workers N``), under one supervisor.

Each worker is a whole server (both transports, every model, its own batchers and executor):
one Python event loop tops out well below what two cores can serve, and the gRPC and REST work
per request is what limits it. The supervisor binds the REST socket once and hands it to every
worker (the workers accept from one queue); gRPC cannot share a bound socket, so each worker
binds the gRPC port with ``SO_REUSEPORT`` while the supervisor holds it reserved. Metrics are
summed over the workers (prometheus_client's multiprocess mode); model load and unload orders
reach every worker through a shared control folder (``service.control.orders``). SIGTERM or
SIGINT drains every worker; if a worker dies on its own, the supervisor stops the rest and
exits 1, so that the process manager above (Docker, Kubernetes) restarts the whole service.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from service.control.orders import CONTROL_DIR
from service.errors import ModelLoadError
from service.execution import ThreadPlan
from service.listeners import bind_http_socket, reserve_grpc_port
from service.settings import Settings
from service.telemetry import MULTIPROCESS_DIR

__all__ = ["run_workers"]

log = logging.getLogger(__name__)

STARTUP_FAILED = 3
"""A worker's exit status when it could not start serving (its log says why)."""


def _worker(
    settings: Settings, plan: ThreadPlan, http_socket: socket.socket, ready: Connection
) -> None:
    """One worker process: the same start-up as a single-process service."""
    from service.lifetime import die_with_parent, run_event_loop
    from service.logs import configure_logging
    from service.server import serve, start_dataplane

    die_with_parent()
    configure_logging(settings.log_level, settings.log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor asks with SIGTERM

    async def run() -> int:
        try:
            plane = await start_dataplane(settings, plan)
        except ModelLoadError as exc:
            log.error("%s", exc)
            return STARTUP_FAILED
        return await serve(
            settings, plane, http_socket, reuse_port=True, on_ready=lambda: ready.send(True)
        )

    sys.exit(run_event_loop(run()))


def _stop(processes: Sequence[BaseProcess], grace: float) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("worker %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()


def run_workers(settings: Settings, plan: ThreadPlan) -> int:
    """Run ``settings.workers`` serving processes until SIGTERM/SIGINT; the exit status."""
    http_socket = bind_http_socket(settings.host, settings.http_port)
    grpc_guard, grpc_port = reserve_grpc_port(settings.host, settings.grpc_port)
    settings = settings.model_copy(update={"grpc_port": grpc_port})
    metrics_dir = tempfile.mkdtemp(prefix="service-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_dir  # read by prometheus_client in each worker
    control_dir = tempfile.mkdtemp(prefix="service-control-")
    os.environ[CONTROL_DIR] = control_dir  # read by each worker's model control
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    context = multiprocessing.get_context("spawn")
    processes, pipes = [], []
    try:
        for _ in range(settings.workers):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker, args=(settings, plan, http_socket, send), name="service-worker"
            )
            process.start()
            processes.append(process)
            pipes.append(receive)
        return _supervise(processes, pipes, stopping, settings)
    finally:
        _stop(processes, settings.shutdown_grace_seconds)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        http_socket.close()
        grpc_guard.close()
        for folder, variable in ((metrics_dir, MULTIPROCESS_DIR), (control_dir, CONTROL_DIR)):
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(variable, None)


def _supervise(
    processes: Sequence[BaseProcess],
    pipes: list[Connection],
    stopping: list[int],
    settings: Settings,
) -> int:
    waiting_for = set(range(len(processes)))
    while not stopping:
        sentinels = [p.sentinel for p in processes]
        ready = wait([*sentinels, *(pipes[i] for i in waiting_for)], timeout=0.2)
        for index in list(waiting_for):
            if pipes[index] in ready:
                pipes[index].recv()
                waiting_for.discard(index)
                if not waiting_for:
                    log.info("all %d workers ready (pids %s)", len(processes), _pids(processes))
        dead = [p for p in processes if not p.is_alive()]
        if dead:
            log.error(
                "worker %s exited with status %s; stopping the service",
                dead[0].pid,
                dead[0].exitcode,
            )
            return 1
    log.info("received %s; draining %d workers", signal.Signals(stopping[0]).name, len(processes))
    _stop(processes, settings.shutdown_grace_seconds)
    return 0 if all(p.exitcode == 0 for p in processes) else 1


def _pids(processes: Sequence[BaseProcess]) -> str:
    return ", ".join(str(p.pid) for p in processes)
