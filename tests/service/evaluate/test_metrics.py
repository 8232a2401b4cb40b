"""Tallies add up exactly: any split of the rows gives the tally of all of them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.activations import softmax
from service.evaluate.metrics import ECE_BINS, Tally, classification_metrics


def _batch(seed: int, rows: int, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = (rng.normal(0, 3, (rows, classes))).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    losses = rng.uniform(0, 5, rows).astype(np.float32)
    return logits, labels, losses


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 300),
    classes=st.integers(2, 12),
    cuts=st.lists(st.floats(0, 1), max_size=6),
)
def test_any_split_adds_up_to_the_whole(
    seed: int, rows: int, classes: int, cuts: list[float]
) -> None:
    logits, labels, losses = _batch(seed, rows, classes)
    whole = Tally.of(logits, labels, losses)
    bounds = sorted({0, rows, *(int(c * rows) for c in cuts)})
    parts = [Tally.of(logits[a:b], labels[a:b], losses[a:b]) for a, b in itertools.pairwise(bounds)]
    total = Tally.zeros(classes)
    for part in reversed(parts):  # any order
        total = total + part
    for name, value in whole.to_arrays().items():
        np.testing.assert_allclose(getattr(total, name), value, rtol=1e-12, err_msg=name)
    assert total.metrics() == pytest.approx(whole.metrics(), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 200), classes=st.integers(2, 12))
def test_tally_matches_direct_definitions(seed: int, rows: int, classes: int) -> None:
    logits, labels, losses = _batch(seed, rows, classes)
    tally = Tally.of(logits, labels, losses)
    probabilities = softmax(logits).astype(np.float64)
    predicted = probabilities.argmax(1)
    confidence = probabilities.max(1)
    assert tally.accuracy() == pytest.approx(np.mean(predicted == labels))
    ranks = (logits > logits[np.arange(rows), labels][:, None]).sum(1)
    assert tally.top_k_accuracy() == pytest.approx(np.mean(ranks < 5))
    # ECE straight from its definition, bin by bin.
    ece = 0.0
    for b in range(ECE_BINS):
        lo, hi = b / ECE_BINS, (b + 1) / ECE_BINS
        inside = (confidence > lo) & (confidence <= hi) if b else confidence <= hi
        if inside.any():
            gap = np.mean(predicted[inside] == labels[inside]) - confidence[inside].mean()
            ece += inside.mean() * abs(gap)
    assert tally.ece() == pytest.approx(ece, abs=1e-9)
    confusion = np.zeros((classes, classes), int)
    np.add.at(confusion, (labels, predicted), 1)
    np.testing.assert_array_equal(tally.confusion, confusion)
    np.testing.assert_allclose(tally.loss_sum, np.bincount(labels, losses, classes), rtol=1e-6)
    assert classification_metrics(logits, labels) == pytest.approx(tally.metrics())


def test_rows_a_loss_ignores_add_nothing() -> None:
    logits, labels, losses = _batch(1, 50, 4)
    counted = labels != 2
    tally = Tally.of(logits, labels, losses, counted)
    assert tally.loss_rows[2] == 0
    assert tally.loss_sum[2] == 0
    assert tally.loss_rows.sum() == counted.sum()
    assert tally.rows.sum() == 50  # accuracy still counts every row


def test_arrays_round_trip() -> None:
    tally = Tally.of(*_batch(2, 30, 5))
    again = Tally.from_arrays(tally.to_arrays())
    for name, value in tally.to_arrays().items():
        np.testing.assert_array_equal(getattr(again, name), value)
