"""The gRPC server: both APIs (errors mapped in one place), health, and reflection."""

from __future__ import annotations

import asyncio
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
    """A ``grpc.aio`` server whose health status follows the data plane's readiness."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        reuse_port: bool = False,
        security: Security | None = None,
    ) -> None:
        security = security or Security()
        telemetry = plane.telemetry
        # Only with keys: without, no interceptor runs at all.
        keys = security.keys
        self.server = grpc.aio.server(
            interceptors=None if keys is None else [ApiKeyInterceptor(keys, telemetry)],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                # Shared only by the worker processes of one service (see service.listeners);
                # alone, a port already in use must be an error, not silently shared.
                ("grpc.so_reuseport", int(reuse_port)),
            ],
        )
        classifier_pb2_grpc.add_ClassifierServicer_to_server(
            guarded(ClassifierServicer(plane), CLASSIFIER, telemetry), self.server
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            guarded(InferenceServicer(plane), INFERENCE, telemetry), self.server
        )
        self.health = DrainingHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME),
            self.server,
            pool=_reflection_pool(),
        )
        address = f"{host}:{port}"
        try:
            if security.tls is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, server_credentials(security.tls))
        except RuntimeError:  # newer grpc raises instead of returning 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}: address already in use")

    async def start(self) -> None:
        """Listen; health reports NOT_SERVING until :meth:`set_serving`."""
        await self._set(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()

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
        await self.server.stop(grace)
