"""Calibration figures: the textbook formulas, the evaluation report's ECE, any chunking."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.calibration.quality import Quality, QualitySums
from service.calibration.temperature import nll_terms
from service.evaluate.metrics import ECE_BINS, Tally

Rows = tuple[np.ndarray, np.ndarray]


def batch(seed: int, rows: int = 2000, classes: int = 10, scale: float = 3.0) -> Rows:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (rows, classes)).astype(np.float32)
    # Labels that agree with the logits more often than chance, as a model's would.
    noisy = logits + rng.gumbel(0, scale, (rows, classes)).astype(np.float32)
    return logits, noisy.argmax(axis=1)


@pytest.mark.parametrize("temperature", [1.0, 0.3, 2.5])
def test_figures_are_the_textbook_formulas(temperature: float) -> None:
    logits, labels = batch(0)
    got = QualitySums.of(logits, labels, temperature).quality()
    z = logits.astype(np.float64) / temperature
    log_p = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    p = np.exp(log_p)
    rows = np.arange(len(labels))
    one_hot = np.eye(10)[labels]
    assert got.rows == len(labels)
    assert got.nll == pytest.approx(-log_p[rows, labels].mean(), rel=1e-12)
    assert got.brier == pytest.approx(((p - one_hot) ** 2).sum(axis=1).mean(), rel=1e-6)
    assert got.accuracy == np.mean(p.argmax(axis=1) == labels)
    assert got.mean_confidence == pytest.approx(p.max(axis=1).mean(), rel=1e-6)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == labels
    edges = np.arange(ECE_BINS + 1) / ECE_BINS
    ece = sum(
        abs(correct[inside].sum() - confidence[inside].sum())
        for lo, hi in itertools.pairwise(edges)
        if (inside := (confidence > lo) & (confidence <= hi)).any()
    ) / len(labels)
    assert got.ece == pytest.approx(ece, rel=1e-5)
    assert got.nll == pytest.approx(nll_terms(logits, labels, 1 / temperature).nll / 2000)


def test_at_temperature_one_ece_and_accuracy_are_the_evaluation_reports() -> None:
    logits, labels = batch(1)
    sums = QualitySums.of(logits, labels)
    tally = Tally.of(logits, labels)
    assert np.array_equal(sums.bin_rows, tally.bin_rows)
    assert np.array_equal(sums.bin_correct, tally.bin_correct)
    assert np.array_equal(sums.bin_confidence, tally.bin_confidence)
    assert sums.quality().ece == tally.ece()
    assert sums.quality().accuracy == tally.accuracy()


@pytest.mark.parametrize("temperature", [0.4, 1.7, 6.0])
def test_at_another_temperature_they_are_the_reports_of_scaled_logits(temperature: float) -> None:
    logits, labels = batch(2)
    sums = QualitySums.of(logits, labels, temperature)
    # The report divides before the max shift, the service after: equal but for rounding.
    tally = Tally.of(logits / np.float32(temperature), labels)
    assert np.array_equal(sums.bin_rows, tally.bin_rows)
    assert np.array_equal(sums.bin_correct, tally.bin_correct)
    np.testing.assert_allclose(sums.bin_confidence, tally.bin_confidence, rtol=1e-6)
    assert sums.quality().ece == pytest.approx(tally.ece(), abs=1e-6)
    assert sums.quality().accuracy == tally.accuracy()
    assert sums.quality().ece != pytest.approx(QualitySums.of(logits, labels).quality().ece)


@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 300),
    classes=st.integers(2, 12),
    temperature=st.floats(0.05, 20),
    cuts=st.lists(st.floats(0, 1), max_size=6),
)
def test_chunks_add_up_to_one_batch(
    seed: int, rows: int, classes: int, temperature: float, cuts: list[float]
) -> None:
    logits, labels = batch(seed, rows, classes)
    whole = QualitySums.of(logits, labels, temperature)
    bounds = sorted({0, rows, *(int(c * rows) for c in cuts)})
    total = QualitySums.zeros()
    for a, b in reversed(list(itertools.pairwise(bounds))):  # any order
        total = total + QualitySums.of(logits[a:b], labels[a:b], temperature)
    assert (total.rows, total.correct) == (whole.rows, whole.correct)
    assert np.array_equal(total.bin_rows, whole.bin_rows)
    assert np.array_equal(total.bin_correct, whole.bin_correct)
    np.testing.assert_allclose(total.bin_confidence, whole.bin_confidence, rtol=1e-12)
    for name in ("nll", "brier", "confidence"):
        assert getattr(total, name) == pytest.approx(getattr(whole, name), rel=1e-12, abs=1e-12)
    assert total.quality().ece == pytest.approx(whole.quality().ece, rel=1e-9, abs=1e-15)


def test_nll_is_tensorflows_mean_sparse_cross_entropy() -> None:
    import tensorflow as tf

    logits, labels = batch(3)
    for temperature in (1.0, 0.5, 4.0):
        tf_nll = tf.keras.losses.sparse_categorical_crossentropy(
            labels, logits / np.float32(temperature), from_logits=True
        )
        want = float(np.mean(tf_nll.numpy().astype(np.float64)))
        got = QualitySums.of(logits, labels, temperature).quality().nll
        assert got == pytest.approx(want, rel=1e-5)


def test_a_perfect_one_hot_prediction_has_no_error() -> None:
    labels = np.arange(40) % 4
    logits = (np.eye(4, dtype=np.float32) * 1000)[labels]
    quality = QualitySums.of(logits, labels).quality()
    assert quality == Quality(
        rows=40, nll=0.0, ece=0.0, brier=0.0, accuracy=1.0, mean_confidence=1.0
    )


def test_a_confident_wrong_row_costs_its_logit_gap() -> None:
    logits = np.array([[1e30, 0.0, -1e30]], np.float32)
    quality = QualitySums.of(logits, np.array([2]), temperature=2.0).quality()
    assert quality.nll == pytest.approx(1e30, rel=1e-6)  # (1e30 − (−1e30)) / 2, exactly
    assert quality.brier == 2.0
    assert (quality.accuracy, quality.mean_confidence, quality.ece) == (0.0, 1.0, 1.0)


def test_no_rows_give_zero_figures_and_the_dict_names_them() -> None:
    empty = QualitySums.of(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), 2.0)
    assert empty.quality().to_dict() == {
        "rows": 0, "nll": 0.0, "ece": 0.0, "brier": 0.0, "accuracy": 0.0, "mean_confidence": 0.0
    }  # fmt: skip


def test_sums_survive_pickling() -> None:
    sums = QualitySums.of(*batch(4, 100), 1.3)
    copy = pickle.loads(pickle.dumps(sums))
    assert copy.quality() == sums.quality()
    assert np.array_equal(copy.bin_confidence, sums.bin_confidence)


def test_bad_labels_and_temperatures_are_errors() -> None:
    logits, labels = batch(5, 10, 3)
    labels[4] = 3
    with pytest.raises(ValueError, match="label 3 at row 4"):
        QualitySums.of(logits, labels)
    with pytest.raises(ValueError, match="temperature"):
        QualitySums.of(logits, labels % 3, 0.0)
