"""Several gRPC listeners in one serving process: one port, each listener accepting on its own,
and the port this process's alone while they run."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.dataplane import DataPlane
from service.grpc import GrpcServer


async def _check(port: int) -> int:
    """A health check over a new connection (the kernel picks the listener it reaches)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
        return int(response.status)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _each_listener_accepts_on_the_shared_port(plane: DataPlane) -> None:
    server = GrpcServer(plane, host="127.0.0.1", port=0, max_message_bytes=1 << 20, listeners=2)
    await server.start()
    try:
        assert len(server.servers) == 2
        assert server.port != 0
        assert not _bindable(server.port)  # held for this process's listeners
        await server.set_serving(True)
        serving = health_pb2.HealthCheckResponse.SERVING
        assert [await _check(server.port) for _ in range(8)] == [serving] * 8
        await server.servers[0].stop(0)  # the other listener alone now accepts
        assert [await _check(server.port) for _ in range(8)] == [serving] * 8
    finally:
        await server.stop(grace=1)
    assert _bindable(server.port)  # given back on stop


def test_each_listener_accepts_on_the_shared_port(plane: DataPlane) -> None:
    asyncio.run(_each_listener_accepts_on_the_shared_port(plane))


@pytest.mark.parametrize("shared", [False, True], ids=["plain holder", "holder sharing it"])
def test_a_port_in_use_is_an_error_with_several_listeners(plane: DataPlane, shared: bool) -> None:
    with socket.socket() as taken:
        if shared:  # as another instance of this service holds it
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot bind gRPC to 127.0.0.1:{port}"):
            GrpcServer(plane, host="127.0.0.1", port=port, max_message_bytes=1 << 20, listeners=2)
