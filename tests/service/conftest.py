"""Fixtures: a model repository of small ONNX models, the data plane, and REST clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.dataplane import DataPlane
from service.repository import ModelRepository
from service.rest import create_app
from service.telemetry import Telemetry
from tests.service.live import LiveService, live_service
from tests.service.onnx_models import LinearModel, write_linear_model

CLASSES = [f"thing-{i}" for i in range(10)]
MAX_BATCH = 64
MAX_BODY = 1 << 20


@pytest.fixture(scope="session")
def repository_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    meta = {"dataset": "synthetic", "input_layout": "NHWC", "input_pixel_range": "0-255"}
    write_linear_model(
        root / "cifar10" / "1" / "model.onnx", seed=1, metadata=meta, class_names=CLASSES
    )
    write_linear_model(
        root / "cifar10" / "2" / "model.onnx", seed=2, metadata=meta, class_names=CLASSES
    )
    write_linear_model(
        root / "xy" / "1" / "model.onnx", seed=3, input_name="x", output_name="y", classes=4
    )
    return root


@pytest.fixture(scope="session")
def references() -> dict[tuple[str, int], LinearModel]:
    """The numpy twins of the repository's models (same seeds)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        return {
            ("cifar10", 1): write_linear_model(folder / "a.onnx", seed=1),
            ("cifar10", 2): write_linear_model(folder / "b.onnx", seed=2),
            ("xy", 1): write_linear_model(folder / "c.onnx", seed=3, classes=4),
        }


@pytest.fixture(scope="session")
def plane(repository_path: Path) -> DataPlane:
    repository = ModelRepository.load(repository_path, device="cpu", intra_op_threads=1)
    dataplane = DataPlane(repository, Telemetry(), max_batch_size=MAX_BATCH)
    dataplane.set_ready(True)
    return dataplane


@pytest.fixture(scope="session")
def client(plane: DataPlane) -> Iterator[TestClient]:
    app = create_app(plane, plane.telemetry, max_request_bytes=MAX_BODY)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)


@pytest.fixture(scope="session")
def plane_repository(plane: DataPlane) -> ModelRepository:
    return plane.repository


@pytest.fixture(scope="session")
def live(repository_path: Path) -> Iterator[LiveService]:
    """``python -m service`` (REST and gRPC) on free loopback ports, for the whole session."""
    with live_service(repository_path, "--max-batch-size", str(MAX_BATCH)) as running:
        yield running
