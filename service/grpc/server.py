"""The gRPC servers: both APIs (errors mapped in one place), health, and reflection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from service._generated._pool import POOL
from service._generated.cifar10.v1 import classifier_pb2, classifier_pb2_grpc
from service._generated.inference import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from service.dataplane import DataPlane
from service.grpc.classifier import ClassifierServicer
from service.grpc.errors import guarded
from service.grpc.health import DrainingHealthServicer
from service.grpc.inference import InferenceServicer
from service.grpc.security import ApiKeyInterceptor, server_credentials
from service.listeners import reserve_grpc_port
from service.security import Security

__all__ = ["GrpcServer"]

CLASSIFIER = classifier_pb2.DESCRIPTOR.services_by_name["Classifier"]
INFERENCE = grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
SERVICES = (CLASSIFIER.full_name, INFERENCE.full_name)


def _reflection_pool() -> descriptor_pool.DescriptorPool:
    """The generated messages' pool, completed with the health and reflection services so
    that reflection can describe every service this server offers."""
    for module in (health_pb2, reflection_pb2):
        try:
            POOL.FindFileByName(module.DESCRIPTOR.name)
        except KeyError:
            POOL.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    return POOL


class GrpcServer:
    """``grpc.aio`` servers on one port whose health status follows the data plane's
    readiness.

    ``listeners`` servers share the port (``SO_REUSEPORT``; the kernel spreads client
    connections over them) and everything else: servicers, health, the event loop. A
    ``grpc.aio`` server asks gRPC's core for one new call at a time and asks for the next only
    once the event loop has taken that one, so with many connections calls wait in the core
    while the loop is busy with other work; each further server keeps one more call on offer
    (docs/service.md, "gRPC listeners")."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        reuse_port: bool = False,
        security: Security | None = None,
        listeners: int = 1,
    ) -> None:
        security = security or Security()
        telemetry = plane.telemetry
        # Only with keys: without, no interceptor runs at all.
        keys = security.keys
        interceptors = None if keys is None else [ApiKeyInterceptor(keys, telemetry)]
        credentials = None if security.tls is None else server_credentials(security.tls)
        self._reservation: socket.socket | None = None
        if listeners > 1 and not reuse_port:
            # Held until stop: a port already in use is an error, and the port stays this
            # process's for its listeners to share (port 0 resolves to one free port here).
            self._reservation, port = reserve_grpc_port(host, port)
        classifier = guarded(ClassifierServicer(plane), CLASSIFIER, telemetry)
        inference = guarded(InferenceServicer(plane), INFERENCE, telemetry)
        self.health = DrainingHealthServicer()
        pool = _reflection_pool()
        self.servers: list[grpc.aio.Server] = []
        try:
            for _ in range(listeners):
                server = grpc.aio.server(
                    interceptors=interceptors,
                    options=[
                        ("grpc.max_receive_message_length", max_message_bytes),
                        ("grpc.max_send_message_length", max_message_bytes),
                        # Shared only by this process's listeners and the worker processes of
                        # one service (see service.listeners); alone, a port already in use
                        # must be an error, not silently shared.
                        ("grpc.so_reuseport", int(reuse_port or listeners > 1)),
                    ],
                )
                classifier_pb2_grpc.add_ClassifierServicer_to_server(classifier, server)
                grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
                    inference, server
                )
                health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
                reflection.enable_server_reflection(
                    (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server, pool=pool
                )
                port = _bind(server, host, port, credentials)
                self.servers.append(server)
        except BaseException:
            if self._reservation is not None:
                self._reservation.close()
            raise
        self.port = port

    async def start(self) -> None:
        """Listen; health reports NOT_SERVING until :meth:`set_serving`."""
        await self._set(health_pb2.HealthCheckResponse.NOT_SERVING)
        for server in self.servers:
            await server.start()

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING (or NOT_SERVING) for the server and each service."""
        status = health_pb2.HealthCheckResponse
        await self._set(status.SERVING if serving else status.NOT_SERVING)

    def follow(self, ready: Callable[[], bool]) -> Callable[[], None]:
        """A callback that reports ``ready()`` as health; each update asks it as it runs, so the
        last one reports the current state."""
        updates: set[asyncio.Task[None]] = set()

        async def update() -> None:
            await self.set_serving(ready())

        def changed() -> None:
            task = asyncio.get_running_loop().create_task(update())
            updates.add(task)
            task.add_done_callback(updates.discard)

        return changed

    async def _set(self, status: int) -> None:
        for name in ("", *SERVICES):
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Stop accepting calls and let running ones finish for ``grace`` seconds."""
        await self.health.drain()
        await asyncio.gather(*(server.stop(grace) for server in self.servers))
        if self._reservation is not None:
            self._reservation.close()


def _bind(
    server: grpc.aio.Server, host: str, port: int, credentials: grpc.ServerCredentials | None
) -> int:
    """Listen on ``host:port`` (unencrypted without ``credentials``); the bound port. Raises
    :class:`OSError` naming the address if it is taken."""
    address = f"{host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:  # newer grpc raises instead of returning 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}: address already in use")
    return bound
