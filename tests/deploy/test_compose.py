"""``docker compose up`` as a user runs it, on a real Docker engine: the training job puts a
model in the volume (once), the server comes up healthy as a non-root user, answers REST and
gRPC, and ``docker compose stop`` drains it to exit status 0. Skipped, with the reason, where
no engine answers (``.ci/run`` starts one where the machine has the workplace's tools)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.client import GrpcClient
from service.launcher import free_port
from tests.deploy.engine import compose, container_logs, docker, engine_problem

pytestmark = pytest.mark.skipif(engine_problem() is not None, reason=f"{engine_problem()}")

BUILD_TIMEOUT = 1500  # the first build downloads TensorFlow; later ones reuse its layer
HEALTHY_TIMEOUT = 600  # the training job trains the quickstart model (about 2 minutes)


class Stack:
    """The compose project, on free loopback ports."""

    def __init__(self) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.env = {
            "SERVICE_HOST": "127.0.0.1",  # loopback only (the engine here uses host networking)
            "SERVICE_HTTP_PORT": str(self.http_port),
            "SERVICE_GRPC_PORT": str(self.grpc_port),
        }

    def compose(self, *args: str, timeout: float = 120) -> str:
        return compose(*args, env=self.env, timeout=timeout).stdout

    def container(self, service: str) -> str:
        found = self.compose("ps", "-a", "-q", service).split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def state(self, service: str) -> dict[str, Any]:
        found = docker("inspect", "--format", "{{json .State}}", self.container(service))
        return dict(json.loads(found))

    def wait_healthy(self, service: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (state := self.state(service)).get("Health", {}).get("Status") != "healthy":
            assert state["Status"] in ("created", "running"), f"{service} {state}: {self.logs()}"
            assert time.monotonic() < deadline, f"{service} not healthy: {state}: {self.logs()}"
            time.sleep(2)

    def logs(self) -> str:
        return compose("logs", "--no-color", "--tail", "60", env=self.env, check=False).stdout


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = Stack()
    try:
        running.compose("up", "--detach", "--build", timeout=BUILD_TIMEOUT + HEALTHY_TIMEOUT)
        running.wait_healthy("inference", HEALTHY_TIMEOUT)
        yield running
    finally:
        compose("down", "--volumes", "--timeout", "40", env=running.env, timeout=300, check=False)


def test_the_training_job_made_the_model_and_exited_0(stack: Stack) -> None:
    assert stack.state("train")["ExitCode"] == 0
    logs = container_logs(stack.container("train"))
    assert "exported /models/cifar10/1/model.onnx" in logs


def test_the_server_runs_as_a_non_root_user(stack: Stack) -> None:
    uid = docker("exec", stack.container("inference"), "id", "-u").strip()
    assert uid != "0"


def test_rest_and_grpc_answer(stack: Stack) -> None:
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    url = f"http://127.0.0.1:{stack.http_port}"
    answer = httpx.post(f"{url}/predict", json={"instances": images.tolist()}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert np.asarray(answer.json()["logits"]).shape == (2, 10)

    target = f"127.0.0.1:{stack.grpc_port}"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        health = stub.Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    with GrpcClient(target) as client:
        logits = client.predict(images).logits
    np.testing.assert_allclose(logits, answer.json()["logits"], rtol=1e-5, atol=1e-5)


def test_an_export_into_the_volume_is_served_without_a_restart(stack: Stack) -> None:
    """The loop: a one-off export writes version 2 into the volume the server mounts read-only;
    the running server (poll mode, the default) serves it; a label rolls ``stable`` back."""
    url = f"http://127.0.0.1:{stack.http_port}"
    started = stack.state("inference")["StartedAt"]
    stack.compose("run", "--rm", "--no-deps", "train", "python", "-m", "training", "export",
                  "--run", "/runs/quickstart", "--repository", "/models", "--name", "cifar10",
                  timeout=300)  # fmt: skip
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/v2/models/cifar10/versions/2/ready").status_code != 200:
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.5)
    assert httpx.get(f"{url}/models/cifar10").json()["version"] == "2"
    config = json.dumps({"labels": {"stable": 1}})
    stack.compose("run", "--rm", "--no-deps", "--entrypoint", "sh", "train", "-c",
                  f"echo '{config}' > /models/cifar10/config.json")  # fmt: skip
    assert httpx.post(f"{url}/v2/repository/models/cifar10/load", timeout=60).status_code == 200
    stable = httpx.get(f"{url}/v2/models/cifar10/versions/stable").json()
    assert stable["versions"] == ["1", "2"]
    answer = httpx.post(f"{url}/predict", json={"instances": [[[[0, 0, 0]] * 32] * 32],
                                                "version": "stable"}, timeout=30)  # fmt: skip
    assert answer.json()["model"]["version"] == "1", answer.text
    assert stack.state("inference")["StartedAt"] == started  # no restart


def test_a_second_up_keeps_the_model(stack: Stack) -> None:
    """The job trains only when the volume has no model: a restart of the stack reuses it."""
    stack.compose("up", "--detach")
    stack.wait_healthy("inference", 120)
    assert stack.state("train")["ExitCode"] == 0
    assert "already has a model" in container_logs(stack.container("train"), tail=3)


def test_stop_drains_and_exits_0(stack: Stack) -> None:
    stack.compose("stop", "--timeout", "40")
    state = stack.state("inference")
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), stack.logs()
    assert "service.server: stopped" in container_logs(stack.container("inference"))
