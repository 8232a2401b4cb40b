"""``python -m service`` as a user runs it: its own process on free loopback ports, start-up
failures, settings from flags and the environment, several worker processes, and shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.client import GrpcClient
from service.launcher import RunningService, free_port, run_service, running_service
from service.losses import compute_loss
from tests.service.helpers import b64, encode, metric
from tests.service.onnx_models import LinearModel, write_linear_model


@pytest.fixture
def service(live: RunningService) -> RunningService:
    return live


def test_predict_and_loss_over_http(
    service: RunningService, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    cifar = references[("cifar10", 2)]
    with httpx.Client(base_url=service.url, timeout=30) as http:
        predicted = http.post(
            "/predict", json={"model": "cifar10", "instances": images.tolist(), "top_k": 3}
        )
        assert predicted.status_code == 200
        np.testing.assert_allclose(
            predicted.json()["logits"], cifar.logits(images), rtol=1e-5, atol=1e-5
        )

        png = encode(images[0])
        uploaded = http.post(
            "/predict",
            files={"file": ("x.png", png, "image/png")},
            data={"model": "cifar10"},
        )
        assert uploaded.status_code == 200
        np.testing.assert_allclose(
            uploaded.json()["logits"][0], predicted.json()["logits"][0], rtol=1e-6
        )

        labels = [1, 2, 3, 4, 5]
        encoded = [b64(png)]
        loss = http.post(
            "/loss",
            json={
                "loss": "sparse_categorical_crossentropy",
                "labels": labels,
                "instances": images.tolist(),
                "model": "cifar10",
            },
        )
        assert loss.status_code == 200
        expected = compute_loss(
            "sparse_categorical_crossentropy", labels, logits=cifar.logits(images)
        )
        assert loss.json()["value"] == pytest.approx(expected.value, rel=1e-5)
        assert "metrics" in loss.json()
        assert (
            http.post(
                "/loss",
                json={
                    "loss": "sparse_categorical_crossentropy",
                    "labels": [0],
                    "images": encoded,
                    "model": "xy",
                },
            ).status_code
            == 200
        )


def test_server_survives_malformed_requests(service: RunningService) -> None:
    bodies = [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"instances": 5}',
        b'{"images": [1]}',
        b"\xff\xfe",
        b'{"instances": [[[[1e999]]]]}',
    ]
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for path in ("/predict", "/loss"):
            for body in bodies:
                response = http.post(
                    path, content=body, headers={"content-type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (path, body, response.text)
        response = http.post("/predict", content=b"x" * (17 << 20))
        assert response.status_code == 413
        assert http.get("/health/ready").status_code == 200
    assert service.process.poll() is None


def test_missing_repository_exits_before_binding(tmp_path: Path) -> None:
    done = run_service(tmp_path / "nothing-here")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]]
    assert lines[-1].startswith("error: model repository")
    assert "Uvicorn running" not in done.stderr


def test_corrupt_model_exits_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "m" / "1" / "model.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x00garbage")
    done = run_service(tmp_path)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {broken}: onnxruntime cannot load it")
    )


@pytest.mark.parametrize("flag", ["--max-request-rows", "--max-batch-size", "--workers"])
def test_bad_setting_is_reported(tmp_path: Path, flag: str) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    done = run_service(tmp_path, flag, "0")
    assert done.returncode == 2
    assert flag[2:].replace("-", "_") in done.stderr


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    monkeypatch.setenv("SERVICE_MAX_REQUEST_ROWS", "2")
    with running_service(tmp_path) as running:
        response = httpx.post(
            f"{running.url}/predict", json={"instances": np.zeros((3, 32, 32, 3)).tolist()}
        )
        assert response.status_code == 413


def test_help_lists_every_setting() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for flag in (
        "--model-repository",
        "--host",
        "--http-port",
        "--grpc-port",
        "--device",
        "--intra-op-threads",
        "--log-level",
        "--max-request-bytes",
        "--max-request-rows",
        "--batching",
        "--no-batching",
        "--max-batch-size",
        "--max-queue-delay-ms",
        "--max-queue-size",
        "--workers",
        "--model-processes",
        "--executor-threads",
        "--shutdown-grace-seconds",
        "--die-with-parent",
        "--log-format",
        "--api-keys",
        "--api-keys-file",
        "--tls-cert-file",
        "--tls-key-file",
        "--tls-client-ca-file",
        "--cors-origins",
    ):
        assert flag in done.stdout


def test_the_readme_documents_every_setting() -> None:
    """Each setting has a row in README's configuration table: its flag and its variable."""
    from service.launcher import REPO
    from service.settings import Settings

    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        flag, variable = "--" + name.replace("_", "-"), "SERVICE_" + name.upper()
        assert f"| `{flag}`" in readme, name
        assert f"`{variable}`" in readme, name


def test_port_in_use_fails_cleanly(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_service(tmp_path, "--http-port", str(port))
    assert done.returncode != 0
    assert "address already in use" in done.stderr


def children(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` with their command lines (Linux /proc)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            found[int(child)] = cmdline.decode()
    return found


def model_processes(pid: int) -> list[int]:
    """The model processes started by the serving process ``pid``."""
    return [child for child, cmd in children(pid).items() if "service.execution" in cmd]


def test_several_workers_share_both_ports_and_sum_their_metrics(
    tmp_path: Path, images: np.ndarray
) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with running_service(tmp_path, "--workers", "2") as service:
        workers = [p for p, cmd in children(service.process.pid).items() if "spawn" in cmd]
        assert len(workers) == 2
        started = [p for worker in workers for p in model_processes(worker)]
        assert len(started) == 2
        for _ in range(6):  # a new connection each time, so the kernel spreads them
            response = httpx.post(f"{service.url}/predict", json={"instances": images.tolist()})
            assert response.status_code == 200
            with GrpcClient(service.grpc_target) as client:
                assert client.predict(images).logits.shape == (5, 10)
        labels = {"transport": "http", "endpoint": "/predict", "status": "200"}
        assert metric(service.url, "service_requests_total", **labels) == 6
        grpc_labels = {"transport": "grpc", "status": "OK"}
        assert metric(service.url, "service_requests_total", **grpc_labels) == 6
        assert metric(service.url, "service_inference_batch_size_sum", model="m") == 60
    assert service.process.returncode == 0
    for pid in (*workers, *started):
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_sigterm_finishes_the_requests_in_flight_on_both_transports(
    tmp_path: Path, images: np.ndarray
) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with running_service(tmp_path, "--max-queue-delay-ms", "1500") as service:

        def rest() -> int:
            body = {"instances": images[:1].tolist()}
            return httpx.post(f"{service.url}/predict", json=body, timeout=30).status_code

        def grpc_call() -> int:
            with GrpcClient(service.grpc_target) as client:
                return len(client.predict(images[:1]).logits)

        with ThreadPoolExecutor(6) as pool:
            calls = [pool.submit(rest) for _ in range(3)] + [
                pool.submit(grpc_call) for _ in range(3)
            ]
            deadline = time.monotonic() + 10
            while metric(service.url, "service_queue_depth", model="m") < 6:
                assert time.monotonic() < deadline, "the requests never queued"
                time.sleep(0.02)
            service.process.send_signal(signal.SIGTERM)
            assert [c.result() for c in calls] == [200, 200, 200, 1, 1, 1]
        assert service.process.wait(timeout=30) == 0


def test_the_service_stops_when_its_model_process_dies(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with running_service(tmp_path) as service:
        (model_process,) = model_processes(service.process.pid)
        os.kill(model_process, signal.SIGKILL)
        assert service.process.wait(timeout=30) == 1


@pytest.mark.parametrize("shared", [False, True], ids=["plain holder", "holder sharing it"])
def test_grpc_port_in_use_fails_cleanly(tmp_path: Path, shared: bool) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with socket.socket() as taken:
        if shared:  # as another instance of this service holds it (SO_REUSEPORT)
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            done = run_service(tmp_path, "--grpc-port", str(port), "--workers", workers)
            assert done.returncode == 1, done.stderr
            assert f"cannot bind gRPC to 127.0.0.1:{port}" in done.stderr
            assert "address already in use" in done.stderr


def test_a_stuck_model_process_cannot_keep_the_service_alive(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with running_service(tmp_path, "--shutdown-grace-seconds", "1") as service:
        (model_process,) = model_processes(service.process.pid)
        os.kill(model_process, signal.SIGSTOP)  # its next batch never ends
        with ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(
                httpx.post,
                f"{service.url}/predict",
                json={"instances": np.zeros((2, 32, 32, 3)).tolist()},  # two: never a lone run
                timeout=60,
            )
            time.sleep(0.5)
            started = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            assert service.process.wait(timeout=30) == 0
            assert time.monotonic() - started < 20
            with pytest.raises(httpx.HTTPError):
                stuck.result().raise_for_status()
        assert not Path(f"/proc/{model_process}").exists()


def test_die_with_parent_stops_the_service_with_its_parent(tmp_path: Path) -> None:
    """A parent (here a shell) that dies without stopping its service takes it along."""
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    port = free_port()
    script = (
        f"{sys.executable} -m service --model-repository {tmp_path} --http-port {port} "
        f"--grpc-port {free_port()} --die-with-parent & echo $!; sleep 30"
    )
    parent = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        service_pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.2)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()

    def alive() -> bool:
        status = Path(f"/proc/{service_pid}/status")
        return status.exists() and "zombie" not in status.read_text().lower()

    try:
        deadline = time.monotonic() + 30
        while alive():
            assert time.monotonic() < deadline, "the service outlived its parent"
            time.sleep(0.2)
    finally:
        if alive():
            os.kill(service_pid, signal.SIGKILL)
