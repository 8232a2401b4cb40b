"""gRPC health follows readiness: NOT_SERVING until the service is ready and while draining."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.dataplane import DataPlane
from service.grpc import GrpcServer
from service.launcher import free_port


async def _statuses(plane: DataPlane) -> list[int]:
    port = free_port()
    server = GrpcServer(plane, host="127.0.0.1", port=port, max_message_bytes=1 << 20)
    await server.start()
    seen = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        seen.append((await stub.Check(request)).status)  # type: ignore[attr-defined]
        await server.set_serving(True)
        seen.append((await stub.Check(request)).status)  # type: ignore[attr-defined]
        await server.set_serving(False)
        seen.append((await stub.Check(request)).status)  # type: ignore[attr-defined]
    await server.stop(grace=1)
    return seen


def test_health_follows_readiness(plane: DataPlane) -> None:
    status = health_pb2.HealthCheckResponse
    assert asyncio.run(_statuses(plane)) == [status.NOT_SERVING, status.SERVING, status.NOT_SERVING]
