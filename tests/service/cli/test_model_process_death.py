"""When the model process dies, no model can serve: every readiness signal turns off at once
(the gRPC health stream a load balancer watches says NOT_SERVING; REST readiness, gRPC health
and the protocol's ServerReady never say ready again) and the service exits with status 1.
test_service_cli.py checks the exit status alone."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.launcher import RunningService, running_service
from tests.service.onnx_models import write_linear_model

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def model_process(service: RunningService) -> int:
    """The pid of the service's one model process (Linux /proc)."""
    pid = service.process.pid
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    (found,) = [
        c for c in children if b"service.execution" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]
    return found


class HealthWatch(threading.Thread):
    """``grpc.health.v1.Health/Watch`` for the whole server: the statuses it streams, with the
    ``time.monotonic()`` each arrived."""

    def __init__(self, target: str) -> None:
        super().__init__(daemon=True)
        self.target, self.seen = target, list[tuple[float, int]]()
        self.serving = threading.Event()

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stream = health_pb2_grpc.HealthStub(channel).Watch(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=60
            )
            try:
                for response in stream:
                    self.seen.append((time.monotonic(), response.status))
                    if response.status == SERVING:
                        self.serving.set()
            except grpc.RpcError:
                pass  # the server ended the stream as it stopped


def readiness(service: RunningService, channel: grpc.Channel) -> tuple[object, object, object]:
    """REST /health/ready's status, gRPC health and V2 ServerReady; a refused or failed call is
    the exception's name or the gRPC status."""
    try:
        rest: object = httpx.get(f"{service.url}/health/ready", timeout=5).status_code
    except httpx.HTTPError as exc:
        rest = type(exc).__name__
    try:
        request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        stub = health_pb2_grpc.HealthStub(channel)
        health: object = stub.Check(request, timeout=5).status  # type: ignore[attr-defined]
    except grpc.RpcError as exc:
        health = exc.code().name
    try:
        v2_stub = v2_grpc.GRPCInferenceServiceStub(channel)
        ready: object = v2_stub.ServerReady(v2.ServerReadyRequest(), timeout=5).ready
    except grpc.RpcError as exc:
        ready = exc.code().name
    return rest, health, ready


def test_readiness_turns_off_when_the_model_process_dies(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    # An open Watch stream keeps the gRPC server draining until the grace ends: keep it short.
    with running_service(tmp_path, "--shutdown-grace-seconds", "3") as service:
        watch = HealthWatch(service.grpc_target)
        watch.start()
        assert watch.serving.wait(10)
        with grpc.insecure_channel(service.grpc_target) as channel:
            assert readiness(service, channel) == (200, SERVING, True)
            killed = time.monotonic()
            os.kill(model_process(service), signal.SIGKILL)
            answers = []
            while service.process.poll() is None:
                answers.append(readiness(service, channel))
                assert time.monotonic() - killed < 30, "the service never stopped"
                time.sleep(0.05)
        assert service.process.returncode == 1
        watch.join(10)

    assert answers, "the service exited before it could be asked"
    # Never ready again: answered "not ready", or refused or cut off as the listeners close.
    for rest, health, ready in answers:
        assert rest in (503, "ConnectError", "ReadError", "RemoteProtocolError"), rest
        assert health in (NOT_SERVING, "UNAVAILABLE", "CANCELLED"), health
        assert ready in (False, "UNAVAILABLE", "CANCELLED"), ready
    after = [(at, status) for at, status in watch.seen if at > killed]
    assert after, watch.seen
    at, status = after[0]
    assert status == NOT_SERVING
    assert at - killed < 5
