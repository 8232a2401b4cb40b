"""Run the service: load models, then serve gRPC and REST on one event loop."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from service.dataplane import DataPlane
from service.grpc import GrpcServer
from service.repository import ModelRepository
from service.rest import create_app
from service.settings import Settings
from service.telemetry import Telemetry

__all__ = ["build_dataplane", "serve"]

log = logging.getLogger(__name__)


def build_dataplane(settings: Settings) -> DataPlane:
    """Load every model (raising :class:`~service.errors.ModelLoadError`) and wrap it."""
    repository = ModelRepository.load(
        settings.model_repository,
        device=settings.device,
        intra_op_threads=settings.intra_op_threads,
    )
    return DataPlane(
        repository,
        Telemetry(),
        max_batch_size=settings.max_batch_size,
        threads=settings.intra_op_threads or None,
    )


async def serve(settings: Settings, plane: DataPlane) -> None:
    """Serve gRPC and REST on one event loop until interrupted; ready once both listen, not
    ready (and gRPC health NOT_SERVING) while draining."""
    grpc_server = GrpcServer(
        plane,
        host=settings.host,
        port=settings.grpc_port,
        max_message_bytes=settings.grpc_max_message_bytes,
    )
    await grpc_server.start()
    log.info("gRPC listening on %s:%d (reflection on)", settings.host, grpc_server.port)
    app = create_app(plane, plane.telemetry, max_request_bytes=settings.max_request_bytes)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,  # keep the service's logging configuration
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    watcher = asyncio.create_task(_ready_when_started(server, plane, grpc_server))
    try:
        await server.serve()
    finally:
        plane.set_ready(False)
        watcher.cancel()
        await grpc_server.stop(grace=5)


async def _ready_when_started(
    server: uvicorn.Server, plane: DataPlane, grpc_server: GrpcServer
) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.01)
    plane.set_ready(True)
    await grpc_server.set_serving(True)
    for socket in (s for srv in server.servers for s in srv.sockets):
        host, port = socket.getsockname()[:2]
        log.info("REST API listening on http://%s:%d (docs at /docs)", host, port)
