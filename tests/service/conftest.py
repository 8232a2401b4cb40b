"""Fixtures: a model repository of small ONNX models, the service in-process and as its own
process, and clients."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.dataplane import DataPlane
from service.launcher import RunningService, running_service
from tests.service.helpers import CLASSES, MAX_ROWS, InProcessService
from tests.service.onnx_models import LinearModel, write_linear_model


@pytest.fixture(scope="session")
def repository_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    meta = {"dataset": "synthetic", "input_layout": "NHWC", "input_pixel_range": "0-255"}
    for version in (1, 2):
        write_linear_model(
            root / "cifar10" / str(version) / "model.onnx",
            seed=version,
            metadata=meta,
            class_names=CLASSES,
        )
    # Both versions served (the default policy serves the latest only), and a label.
    (root / "cifar10" / "config.json").write_text(
        json.dumps({"version_policy": "all", "labels": {"stable": 1}})
    )
    write_linear_model(
        root / "xy" / "1" / "model.onnx", seed=3, input_name="x", output_name="y", classes=4
    )
    return root


@pytest.fixture(scope="session")
def references() -> dict[tuple[str, int], LinearModel]:
    """The numpy twins of the repository's models (same seeds)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        return {
            ("cifar10", 1): write_linear_model(folder / "a.onnx", seed=1),
            ("cifar10", 2): write_linear_model(folder / "b.onnx", seed=2),
            ("xy", 1): write_linear_model(folder / "c.onnx", seed=3, classes=4),
        }


@pytest.fixture(scope="session")
def served(repository_path: Path) -> Iterator[InProcessService]:
    """The service in this process (REST and gRPC on loopback), for the whole session."""
    service = InProcessService(
        repository_path, max_request_rows=MAX_ROWS, max_request_bytes=1 << 20
    ).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def plane(served: InProcessService) -> DataPlane:
    assert served.plane is not None
    return served.plane


@pytest.fixture(scope="session")
def client(served: InProcessService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        yield http


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)


@pytest.fixture(scope="session")
def live(repository_path: Path) -> Iterator[RunningService]:
    """``python -m service`` as its own process on free loopback ports, for the whole session."""
    with running_service(repository_path, "--max-request-rows", str(MAX_ROWS)) as running:
        yield running
