"""A small labelled dataset in every supported form, and a model repository to score it with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.evaluate.datasets import DatasetSpec
from service.evaluate.job import EvaluationJob, LossSpec
from service.evaluate.models import local_model
from tests.service.helpers import CLASSES
from tests.service.onnx_models import write_linear_model
from training.data import load_cifar10
from training.synthetic import EASY, write_synthetic_cifar10

TEST_ROWS = 700


@pytest.fixture(scope="session")
def cifar_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic set in the CIFAR-10 format: 5 × 50 training rows, 700 test rows."""
    root = tmp_path_factory.mktemp("cifar")
    return write_synthetic_cifar10(
        root, difficulty=EASY, train_per_batch=50, test_size=TEST_ROWS, seed=4
    )


@pytest.fixture(scope="session")
def arrays(cifar_folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The test split's images and labels, read whole (the reference)."""
    data = load_cifar10(cifar_folder)
    return data.x_test, data.y_test


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-models")
    write_linear_model(root / "linear" / "1" / "model.onnx", seed=7, class_names=CLASSES)
    return root


@pytest.fixture(scope="session")
def reference_logits(repository: Path, arrays: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """onnxruntime's logits for every test row in one run."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(repository / "linear" / "1" / "model.onnx"))
    (logits,) = session.run(None, {"images": arrays[0].astype(np.float32)})
    return np.asarray(logits, np.float32)


def make_job(repository: Path, dataset: str | Path, loss: LossSpec | None = None) -> EvaluationJob:
    return EvaluationJob(
        DatasetSpec(str(dataset)),
        local_model(repository, "linear", None, "cpu"),
        loss or LossSpec(),
        threads=1,
    )
