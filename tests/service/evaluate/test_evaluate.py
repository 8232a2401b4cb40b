"""Evaluation in chunks equals one pass over every row: the loss to 1e-6, the counts exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.activations import Activation
from service.evaluate.job import LossSpec, plan_chunks
from service.evaluate.local_engine import LocalEngine
from service.evaluate.metrics import Tally
from service.evaluate.runner import evaluate
from service.losses import compute_loss
from tests.service.evaluate.conftest import TEST_ROWS, make_job

LOSSES = [
    LossSpec(),
    LossSpec("sparse_categorical_crossentropy", "sum"),
    LossSpec("sparse_categorical_crossentropy", "mean", {"ignore_class": 3}),
    LossSpec("categorical_crossentropy", "sum_over_batch_size", {"label_smoothing": 0.1}),
    LossSpec("categorical_focal_crossentropy", "mean_with_sample_weight", {"gamma": 3.0}),
    LossSpec("binary_crossentropy", "sum_over_batch_size", input="sigmoid"),
    LossSpec("categorical_crossentropy", "sum", input="softmax"),
    LossSpec("binary_focal_crossentropy", "sum_over_batch_size", {"apply_class_balancing": True}),
    LossSpec("categorical_hinge"),
    LossSpec("squared_hinge", "sum"),
]


def _reference_loss(loss: LossSpec, logits: np.ndarray, labels: np.ndarray) -> float:
    predictions: dict[str, Any]
    if loss.input == "logits":
        predictions = {"logits": logits}
    else:
        predictions = {"probabilities": Activation(loss.input).apply(logits)}
    result = compute_loss(
        loss.name, labels, reduction=loss.reduction, **predictions, **loss.options
    )
    return float(result.value)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda s: f"{s.name}-{s.reduction}-{s.input}")
def test_dataset_loss_equals_one_compute_loss_over_all_rows(
    loss: LossSpec, repository: Path, cifar_folder: Path, arrays, reference_logits
) -> None:
    result = evaluate(make_job(repository, cifar_folder, loss), LocalEngine(2), chunk_size=96)
    expected = _reference_loss(loss, reference_logits, arrays[1])
    assert result.loss_value == pytest.approx(expected, rel=1e-6)
    assert result.tally.total == TEST_ROWS


@pytest.mark.parametrize(("chunk_size", "workers"), [(1, 1), (7, 2), (256, 3), (5000, 1)])
def test_counts_do_not_depend_on_chunks_or_workers(
    chunk_size: int, workers: int, repository: Path, cifar_folder: Path, arrays, reference_logits
) -> None:
    limit = 120 if chunk_size == 1 else None  # one row a chunk: keep it short
    result = evaluate(
        make_job(repository, cifar_folder), LocalEngine(workers), chunk_size=chunk_size,
        limit=limit,
    )  # fmt: skip
    rows = limit or TEST_ROWS
    whole = Tally.of(reference_logits[:rows], arrays[1][:rows])
    np.testing.assert_array_equal(result.tally.confusion, whole.confusion)
    np.testing.assert_array_equal(result.tally.bin_rows, whole.bin_rows)
    np.testing.assert_array_equal(result.tally.in_top_k, whole.in_top_k)
    assert result.tally.ece() == pytest.approx(whole.ece(), abs=1e-6)
    assert result.run["chunks"] == -(-rows // chunk_size)


def test_the_training_split_spans_five_files(repository: Path, cifar_folder: Path) -> None:
    from service.evaluate.datasets import DatasetSpec

    job = make_job(repository, cifar_folder)
    job = type(job)(DatasetSpec(str(cifar_folder), "train"), job.model, job.loss, 1)
    result = evaluate(job, LocalEngine(2), chunk_size=32)
    assert result.tally.total == 250
    # Chunks never cross a file: 50 rows each → 32 + 18, five times.
    assert result.run["chunks"] == 10


def test_plan_chunks_covers_each_row_once() -> None:
    chunks = plan_chunks([(0, 10), (10, 25)], 4, limit=22)
    assert chunks == [(0, 4), (4, 8), (8, 10), (10, 14), (14, 18), (18, 22)]
    assert plan_chunks([(0, 3)], 10) == [(0, 3)]
