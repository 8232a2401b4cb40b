"""The serving process's life as a container or process manager sees it: one start-up line per
listener and model (text or JSON), the health probe the image runs, no telemetry, and a
SIGTERM under load that loses no request on any transport and exits 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from service.client import GrpcClient, RequestError
from service.launcher import RunningService, free_port, run_service, running_service, stop_process
from service.probe import main as probe
from tests.service.helpers import metric
from tests.service.onnx_models import write_linear_model


@pytest.fixture
def model_repository(tmp_path: Path) -> Path:
    write_linear_model(tmp_path / "models" / "m" / "1" / "model.onnx")
    return tmp_path / "models"


def test_json_logs_one_line_per_listener_and_model(model_repository: Path) -> None:
    with running_service(model_repository, "--log-format", "json") as service:
        stop_process(service.process)
        lines = [json.loads(line) for line in service.log().splitlines() if line.strip()]
    assert service.process.returncode == 0
    assert {entry["level"] for entry in lines} <= {"debug", "info", "warning"}
    assert all({"time", "level", "logger", "pid", "message"} <= set(entry) for entry in lines)
    messages = [entry["message"] for entry in lines]

    def count(start: str) -> int:
        return sum(m.startswith(start) for m in messages)

    assert count(f"REST listening on http://127.0.0.1:{service.http_port}") == 1
    assert count(f"gRPC listening on 127.0.0.1:{service.grpc_port}") == 1
    assert count("loaded m version 1 from") == 1
    assert any("CPUExecutionProvider" in m for m in messages if m.startswith("loaded m"))
    assert messages[-1] == "stopped"


def test_the_probe_answers_for_the_settings_it_is_given(live: RunningService) -> None:
    ports = ["--http-port", str(live.http_port), "--grpc-port", str(live.grpc_port)]
    assert probe(ports) == 0
    assert probe(["--http-port", str(free_port())]) == 1  # nothing listens there
    assert probe([*ports[:2], "--grpc-port", str(free_port())]) == 1  # REST alone is not enough


def test_onnxruntime_telemetry_is_off(tmp_path: Path) -> None:
    """onnxruntime (imported by every start of the service) would otherwise persist a device id
    under $HOME and upload usage events."""
    home = tmp_path / "home"
    home.mkdir()
    done = run_service(tmp_path, "--help", env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert list(home.rglob("*")) == []


Outcome = str  # "ok", "refused" (never accepted), or what went wrong


def _rest_client(url: str, image: np.ndarray) -> Callable[[], Outcome]:
    http = httpx.Client(timeout=30)

    def call() -> Outcome:
        try:
            response = http.post(f"{url}/predict", json={"instances": image.tolist()})
        except httpx.ConnectError:
            return "refused"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"

    return call


def _grpc_client(target: str, image: np.ndarray) -> Callable[[], Outcome]:
    client = GrpcClient(target, timeout=30)

    def call() -> Outcome:
        try:
            client.predict(image)
        except RequestError as exc:
            return "refused" if exc.code == "UNAVAILABLE" else f"{exc.code}: {exc}"
        return "ok"

    return call


def _v2_client(target: str, image: np.ndarray) -> Callable[[], Outcome]:
    client = triton_grpc.InferenceServerClient(target)
    tensor = triton_grpc.InferInput("images", list(image.shape), "FP32")
    tensor.set_data_from_numpy(image.astype(np.float32))

    def call() -> Outcome:
        try:
            client.infer("m", [tensor], client_timeout=30)
        except InferenceServerException as exc:
            refused = exc.status() == str(grpc.StatusCode.UNAVAILABLE)
            return "refused" if refused else f"{exc.status()}: {exc.message()}"
        return "ok"

    return call


def test_sigterm_under_load_loses_no_request_on_any_transport(model_repository: Path) -> None:
    """24 clients (REST, gRPC, Open Inference Protocol gRPC) send requests back to back. The
    batcher holds each batch for 300 ms, so once all 24 requests are queued the next batch is
    ~300 ms away: SIGTERM then finds exactly those 24 in flight. Every one is answered; every
    later request is answered or refused at the door, never dropped; the exit status is 0."""
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    flags = ("--max-queue-delay-ms", "300", "--max-batch-size", "64")
    with running_service(model_repository, *flags) as service:
        makers = [_rest_client] * 8 + [_grpc_client] * 8 + [_v2_client] * 8
        targets = {_rest_client: service.url}
        calls = [make(targets.get(make, service.grpc_target), image) for make in makers]
        signalled = threading.Event()
        records: list[list[tuple[float, float, Outcome]]] = [[] for _ in calls]

        def run(call: Callable[[], Outcome], record: list[tuple[float, float, Outcome]]) -> None:
            while True:  # a client that is refused goes elsewhere, as it would in production
                started = time.monotonic()
                outcome = call()
                record.append((started, time.monotonic(), outcome))
                if outcome != "ok" or (signalled.is_set() and len(record) > 1000):
                    return

        threads = [
            threading.Thread(target=run, args=pair) for pair in zip(calls, records, strict=True)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # a few batches go through first
        deadline = time.monotonic() + 20
        while metric(service.url, "service_queue_depth", model="m") < len(calls):
            assert time.monotonic() < deadline, "the clients never all queued"
        sent_at = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        signalled.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        assert service.process.wait(timeout=30) == 0

    in_flight = [next(r for r in record if r[0] < sent_at < r[1]) for record in records]
    assert [outcome for *_, outcome in in_flight] == ["ok"] * len(calls)
    later = [outcome for record in records for started, _, outcome in record if started > sent_at]
    assert set(later) <= {"ok", "refused"}, later
    answered = sum(outcome == "ok" for record in records for *_, outcome in record)
    assert answered > 3 * len(calls)  # load before the signal, not just the last batch
