"""The temperature fit: the exact NLL minimum, whatever the chunking, in few passes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]

from service.calibration.temperature import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    NllTerms,
    fit_temperature,
    nll_terms,
)

Rows = tuple[np.ndarray, np.ndarray]


def drawn(seed: int, rows: int, classes: int, scale: float, true_t: float) -> Rows:
    """float32 logits, and labels drawn from softmax(logits / true_t)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (rows, classes)).astype(np.float32)
    shifted = logits.astype(np.float64) / true_t
    p = np.exp(shifted - np.logaddexp.reduce(shifted, axis=1, keepdims=True))
    labels = (p.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
    return logits, labels


def mean_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Independent of the module: numpy's logaddexp over float64 logits / T."""
    z = logits.astype(np.float64) / temperature
    return float(np.mean(np.logaddexp.reduce(z, axis=1) - z[np.arange(len(labels)), labels]))


def scipy_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    result = minimize_scalar(
        lambda t: mean_nll(logits, labels, t),
        bounds=(MIN_TEMPERATURE, MAX_TEMPERATURE),
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 2000},
    )
    return float(result.x)


def one_batch(rows: Rows):
    return lambda: [rows]


CASES = [  # seed, rows, classes, logit scale, true T
    (0, 4000, 10, 3.0, 1.7),  # overconfident, as trained networks are
    (1, 4000, 10, 3.0, 0.4),  # underconfident
    (2, 3000, 100, 5.0, 2.5),
    (3, 2000, 2, 1.0, 1.0),
    (4, 3000, 10, 30.0, 8.0),
    (5, 3000, 10, 0.1, 0.05),
    (6, 2000, 1000, 2.0, 1.3),
]


@pytest.mark.parametrize(("seed", "rows", "classes", "scale", "true_t"), CASES)
def test_equals_scipy_minimum_in_few_passes(
    seed: int, rows: int, classes: int, scale: float, true_t: float
) -> None:
    logits, labels = drawn(seed, rows, classes, scale, true_t)
    fit = fit_temperature(one_batch((logits, labels)))
    assert fit.converged
    assert not fit.at_bound
    assert fit.rows == rows
    assert fit.iterations <= 15
    assert fit.temperature == pytest.approx(scipy_temperature(logits, labels), rel=1e-4)
    assert fit.nll_before == pytest.approx(mean_nll(logits, labels, 1.0), rel=1e-12)
    assert fit.nll_after == pytest.approx(mean_nll(logits, labels, fit.temperature), rel=1e-12)
    assert fit.nll_after <= fit.nll_before


@pytest.mark.parametrize("true_t", [0.5, 2.0, 4.0])
def test_recovers_the_temperature_the_labels_were_drawn_at(true_t: float) -> None:
    logits, labels = drawn(7, 50_000, 10, 3.0, true_t)
    fit = fit_temperature(one_batch((logits, labels)))
    assert fit.temperature == pytest.approx(true_t, rel=0.05)
    assert fit.iterations <= 10


def test_counts_passes_and_makes_none_beyond_them() -> None:
    rows = drawn(8, 1000, 10, 3.0, 2.0)
    passes = 0

    def chunks() -> Iterator[Rows]:
        nonlocal passes
        passes += 1
        yield rows

    fit = fit_temperature(chunks)
    assert passes == fit.iterations


@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 400),
    classes=st.integers(2, 12),
    cuts=st.lists(st.floats(0, 1), max_size=8),
)
def test_any_chunking_fits_what_one_batch_fits(
    seed: int, rows: int, classes: int, cuts: list[float]
) -> None:
    logits, labels = drawn(seed, rows, classes, 3.0, 1.5)
    bounds = sorted({0, rows, *(int(c * rows) for c in cuts)})
    parts = [(logits[a:b], labels[a:b]) for a, b in itertools.pairwise(bounds)]
    whole = fit_temperature(one_batch((logits, labels)))
    chunked = fit_temperature(lambda: iter(parts))
    assert chunked.temperature == pytest.approx(whole.temperature, rel=1e-6)
    assert chunked.at_bound == whole.at_bound
    assert chunked.rows == whole.rows
    assert chunked.nll_before == pytest.approx(whole.nll_before, rel=1e-12)
    assert chunked.nll_after == pytest.approx(whole.nll_after, rel=1e-9)


@given(
    seed=st.integers(0, 2**16),
    classes=st.integers(2, 10),
    scale=st.floats(0.1, 10),
    log_beta=st.floats(np.log(0.01), np.log(100)),
)
def test_derivatives_are_those_of_the_nll(
    seed: int, classes: int, scale: float, log_beta: float
) -> None:
    logits, labels = drawn(seed, 50, classes, scale, 1.0)
    beta = float(np.exp(log_beta))
    step = 1e-5 * beta
    below, at, above = (nll_terms(logits, labels, b) for b in (beta - step, beta, beta + step))
    assert at.nll == pytest.approx(mean_nll(logits, labels, 1 / beta) * 50, rel=1e-9)
    # Central differences are exact for quadratics; their error here is O(step²) plus rounding.
    slope = (above.nll - below.nll) / (2 * step)
    bend = (above.gradient - below.gradient) / (2 * step)
    size = 50 * scale
    assert at.gradient == pytest.approx(slope, rel=1e-5, abs=1e-6 * size)
    assert at.curvature == pytest.approx(bend, rel=1e-5, abs=1e-6 * size * scale)
    assert at.curvature >= 0


def test_nll_equals_tensorflow_sparse_cross_entropy() -> None:
    import tensorflow as tf

    logits, labels = drawn(9, 500, 10, 4.0, 1.0)
    for beta in (0.05, 1.0, 3.0):
        tf_nll = tf.keras.losses.sparse_categorical_crossentropy(
            labels, logits * np.float32(beta), from_logits=True
        )
        want = float(np.sum(tf_nll.numpy().astype(np.float64)))
        assert nll_terms(logits, labels, beta).nll == pytest.approx(want, rel=1e-5)


def test_huge_logits_and_extreme_betas_stay_exact() -> None:
    """NLL(β) of logits k·z at β/k is NLL(β) of z; its derivatives scale by k and k²."""
    logits, labels = drawn(10, 300, 10, 3.0, 1.0)
    for k, beta in [(1e30, 2e-30), (1e-20, 5e19), (1e3, 3e-3), (1e-3, 1e3)]:
        base = nll_terms(logits, labels, beta * k)
        scaled = nll_terms(logits.astype(np.float64) * k, labels, beta)
        assert np.isfinite([scaled.nll, scaled.gradient, scaled.curvature]).all()
        assert scaled.nll == pytest.approx(base.nll, rel=1e-9)
        assert scaled.gradient == pytest.approx(base.gradient * k, rel=1e-9)
        assert scaled.curvature == pytest.approx(base.curvature * k * k, rel=1e-9)
    # float32's largest logits, at the extreme βs of the range.
    edge = np.array([[3.4e38, -3.4e38, 0.0]], np.float32)
    for beta in (1 / MAX_TEMPERATURE, 1 / MIN_TEMPERATURE):
        terms = nll_terms(edge, np.array([1]), beta)
        assert terms.nll == pytest.approx(beta * 6.8e38, rel=1e-6)
        assert terms.gradient == pytest.approx(6.8e38, rel=1e-6)


def test_terms_add_up_and_an_empty_chunk_adds_nothing() -> None:
    logits, labels = drawn(11, 100, 5, 2.0, 1.0)
    whole = nll_terms(logits, labels, 0.7)
    parts = nll_terms(logits[:30], labels[:30], 0.7) + nll_terms(logits[30:], labels[30:], 0.7)
    assert parts.rows == whole.rows == 100
    for name in ("nll", "gradient", "curvature"):
        assert getattr(parts, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    empty = nll_terms(np.zeros((0, 5), np.float32), np.zeros(0, np.int64), 0.7)
    assert empty == NllTerms(0, 0.0, 0.0, 0.0)


def test_separable_rows_fit_the_smallest_temperature_at_the_bound() -> None:
    logits = np.random.default_rng(12).normal(0, 3, (500, 10)).astype(np.float32)
    fit = fit_temperature(one_batch((logits, logits.argmax(axis=1))))
    assert fit.at_bound
    assert fit.converged
    assert fit.temperature == MIN_TEMPERATURE
    assert fit.iterations <= 5
    assert fit.nll_after < fit.nll_before


def test_labels_against_the_logits_fit_the_largest_temperature_at_the_bound() -> None:
    logits = np.random.default_rng(13).normal(0, 3, (500, 10)).astype(np.float32)
    fit = fit_temperature(one_batch((logits, logits.argmin(axis=1))))
    assert fit.at_bound
    assert fit.temperature == MAX_TEMPERATURE
    assert fit.nll_after < fit.nll_before


def test_one_wrong_row_keeps_the_minimum_inside_the_range() -> None:
    logits = np.random.default_rng(14).normal(0, 3, (500, 10)).astype(np.float32)
    labels = logits.argmax(axis=1)
    labels[0] = logits[0].argmin()
    fit = fit_temperature(one_batch((logits, labels)))
    assert not fit.at_bound
    assert fit.converged
    assert fit.temperature == pytest.approx(scipy_temperature(logits, labels), rel=1e-4)


def test_constant_logits_keep_temperature_one() -> None:
    logits = np.full((200, 4), 2.5, np.float32)
    labels = np.arange(200) % 4
    fit = fit_temperature(one_batch((logits, labels)))
    assert (fit.temperature, fit.converged, fit.at_bound, fit.iterations) == (1.0, True, False, 1)
    assert fit.nll_before == fit.nll_after == pytest.approx(np.log(4))


@pytest.mark.parametrize("chunks", [[], [(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))]])
def test_no_rows_is_an_error(chunks: list[Rows]) -> None:
    with pytest.raises(ValueError, match="no rows"):
        fit_temperature(lambda: iter(chunks))


@pytest.mark.parametrize(("bad", "row"), [(3, 7), (-1, 0)])
def test_a_label_out_of_range_names_itself_and_its_row(bad: int, row: int) -> None:
    logits, labels = drawn(15, 10, 3, 1.0, 1.0)
    labels[row] = bad
    with pytest.raises(ValueError, match=rf"label {bad} at row {row + 10}\b.*0\.\.2"):
        fit_temperature(lambda: [drawn(16, 10, 3, 1.0, 1.0), (logits, labels)])
    with pytest.raises(ValueError, match=rf"label {bad} at row {row}\b"):
        nll_terms(logits, labels, 1.0)


def test_non_finite_logits_are_an_error() -> None:
    logits, labels = drawn(17, 5, 3, 1.0, 1.0)
    logits[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        nll_terms(logits, labels, 1.0)


def test_a_non_positive_beta_is_an_error() -> None:
    logits, labels = drawn(18, 5, 3, 1.0, 1.0)
    for beta in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="beta"):
            nll_terms(logits, labels, beta)


def test_running_out_of_iterations_is_reported() -> None:
    rows = drawn(19, 1000, 10, 3.0, 2.0)
    for iterations in (2, 3):
        fit = fit_temperature(one_batch(rows), max_iterations=iterations)
        assert (fit.iterations, fit.converged, fit.at_bound) == (iterations, False, False)
        # The lowest NLL seen, not the last: never worse than T = 1.
        assert fit.nll_after <= fit.nll_before
        assert fit.nll_after == pytest.approx(mean_nll(*rows, fit.temperature), rel=1e-12)
    assert fit.temperature != 1.0
