"""``python -m service.client`` against the real server, over gRPC and REST."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.launcher import REPO, RunningService
from tests.service.helpers import CLASSES


def client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.client", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(params=["grpc", "http"])
def target(request: pytest.FixtureRequest, live: RunningService) -> list[str]:
    return (
        ["--grpc", f"127.0.0.1:{live.grpc_port}"]
        if request.param == "grpc"
        else ["--http", live.url]
    )


def test_predict_prints_top_k_labels(target: list[str]) -> None:
    done = client(
        *target,
        "--model",
        "cifar10",
        "predict",
        "examples/images/ring.png",
        "examples/images/disk.png",
        "--top-k",
        "2",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "model cifar10 version 2"
    assert lines[1].startswith("examples/images/ring.png: ")
    labels = [part.rsplit(" ", 1)[0] for part in lines[1].split(": ", 1)[1].split(", ")]
    assert len(labels) == 2
    assert set(labels) <= set(CLASSES)


def test_loss_on_a_labelled_batch(target: list[str], tmp_path: Path, images: np.ndarray) -> None:
    batch = tmp_path / "batch.npz"
    np.savez(batch, labels=np.array([0, 1, 2, 3, 4]), images=images)
    done = client(*target, "--model", "cifar10", "loss", str(batch))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sparse_categorical_crossentropy (sum_over_batch_size) = ")
    assert "accuracy" in done.stdout
    assert "ece" in done.stdout


def test_service_errors_are_reported(target: list[str]) -> None:
    done = client(*target, "--model", "nope", "predict", "examples/images/ring.png")
    assert done.returncode == 1
    assert "model 'nope' is not served" in done.stderr
    assert "Traceback" not in done.stderr
