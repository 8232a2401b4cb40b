"""The real server: ``python -m service`` on a free loopback port, talked to over HTTP."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service.losses import compute_loss
from tests.service.live import LiveService, live_service, run_service
from tests.service.onnx_models import LinearModel, write_linear_model


@pytest.fixture
def service(live: LiveService) -> LiveService:
    return live


def test_predict_and_loss_over_http(
    service: LiveService, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
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

        buffer = io.BytesIO()
        Image.fromarray(images[0]).save(buffer, format="PNG")
        uploaded = http.post(
            "/predict",
            files={"file": ("x.png", buffer.getvalue(), "image/png")},
            data={"model": "cifar10"},
        )
        assert uploaded.status_code == 200
        np.testing.assert_allclose(
            uploaded.json()["logits"][0], predicted.json()["logits"][0], rtol=1e-6
        )

        labels = [1, 2, 3, 4, 5]
        encoded = [base64.b64encode(buffer.getvalue()).decode()]
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


def test_server_survives_malformed_requests(service: LiveService) -> None:
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


def test_bad_setting_is_reported(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    done = run_service(tmp_path, "--max-batch-size", "0")
    assert done.returncode == 2
    assert "max_batch_size" in done.stderr


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    monkeypatch.setenv("SERVICE_MAX_BATCH_SIZE", "2")
    with live_service(tmp_path) as running:
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
        "--max-batch-size",
    ):
        assert flag in done.stdout


def test_port_in_use_fails_cleanly(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_service(tmp_path, "--http-port", str(port))
    assert done.returncode != 0
    assert "address already in use" in done.stderr
