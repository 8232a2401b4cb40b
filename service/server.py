"""One serving process: start its model processes, then serve gRPC and REST on one event loop
until asked to stop, and stop in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from service.control import (
    CONTROL_DIR,
    ControlMode,
    LocalOrders,
    ModelControl,
    ModelManager,
    SharedOrders,
)
from service.dataplane import DataPlane
from service.execution import Executor, ModelProcessConfig, ThreadPlan
from service.grpc import GrpcServer
from service.repository import ModelRepository
from service.rest import create_app
from service.security import Security, SecurityConfigError
from service.settings import Settings
from service.telemetry import Telemetry

__all__ = ["serve", "start_dataplane"]

log = logging.getLogger(__name__)


async def start_dataplane(settings: Settings, plan: ThreadPlan) -> DataPlane:
    """Start the model processes, load every model the repository's policies select (raising
    :class:`~service.errors.ModelLoadError` if one cannot be served), and the data plane with
    its model control."""
    config = ModelProcessConfig(
        settings.device, plan.intra_op_threads, settings.log_level, settings.log_format
    )
    executor = await Executor.start(config, plan, lone_runs=settings.lone_runs)
    telemetry = Telemetry()
    repository = ModelRepository()
    manager = ModelManager(
        settings.model_repository, settings.batching_defaults(), executor, telemetry, repository
    )
    shared = os.environ.get(CONTROL_DIR)
    orders = SharedOrders(Path(shared), settings.workers) if shared else LocalOrders()
    control = ModelControl(
        manager, ControlMode(settings.model_control_mode), settings.poll_interval_seconds, orders
    )
    try:
        await control.start()
    except BaseException:
        await control.stop()
        await manager.stop()
        await executor.stop()
        raise
    return DataPlane(control, telemetry, executor, max_request_rows=settings.max_request_rows)


class _RestServer(uvicorn.Server):
    """uvicorn without signal handling of its own: :func:`serve` stops both listeners together
    (uvicorn's would re-raise the signal when it returns, ending the process mid-drain)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: Settings,
    plane: DataPlane,
    http_socket: socket.socket,
    *,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT), then drain: both listeners
    refuse new work at once (readiness off, gRPC health NOT_SERVING), in-flight requests and
    everything queued for the models finish within ``shutdown_grace_seconds``, and the executor
    stops. Returns the exit status: 0, or 1 if a model process died and the service stopped
    for that reason (a process manager should then restart it)."""
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    failed = False

    def model_process_died() -> None:
        nonlocal failed
        failed = True
        plane.set_ready(False)
        plane.set_admitting(False)
        stop.set()

    plane.executor.on_model_process_exit(model_process_died)
    try:
        security = Security.from_settings(settings)
        grpc_server = GrpcServer(
            plane,
            host=settings.host,
            port=settings.grpc_port,
            max_message_bytes=settings.grpc_max_message_bytes,
            reuse_port=reuse_port,
            security=security,
            listeners=settings.grpc_listeners,
        )
    except (OSError, SecurityConfigError):
        await plane.stop()
        raise
    await grpc_server.start()
    app = create_app(
        plane,
        plane.telemetry,
        max_request_bytes=settings.max_request_bytes,
        request_timeout=settings.request_timeout_seconds,
        rest_turns=settings.rest_turns(),
        security=security,
    )
    rest = _RestServer(
        uvicorn.Config(
            app,
            log_config=None,  # keep the service's logging configuration
            log_level=settings.log_level,
            access_log=False,  # one line per request costs more than it tells; see /metrics
            lifespan="off",
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
            **(security.tls.uvicorn_options() if security.tls else {}),
        )
    )
    rest_task = asyncio.create_task(rest.serve(sockets=[http_socket]))
    while not rest.started and not rest_task.done():
        await asyncio.sleep(0.01)
    if rest.started and not stop.is_set():
        plane.set_ready(True)
        await grpc_server.set_serving(True)
        plane.on_readiness_change(grpc_server.follow(plane.ready))
        host, port = http_socket.getsockname()[:2]
        scheme = "http" if security.tls is None else "https"
        log.info("REST listening on %s://%s:%d (docs at /docs)", scheme, host, port)
        log.info("gRPC listening on %s:%d (reflection on)", settings.host, grpc_server.port)
        for line in security.describe():
            log.info("%s", line)
        if on_ready is not None:
            on_ready()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({rest_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    log.info("draining: no new requests; finishing those in flight")
    plane.set_ready(False)
    rest.should_exit = True
    grace = settings.shutdown_grace_seconds
    await asyncio.gather(rest_task, grpc_server.stop(grace=grace), return_exceptions=True)
    await plane.stop(timeout=grace)
    log.info("stopped")
    return 1 if failed else 0
