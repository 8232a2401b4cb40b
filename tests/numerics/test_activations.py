"""Activations against TensorFlow, and their documented behaviour at the float32 limits."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import log_sigmoid, log_softmax, normalized_logits, sigmoid, softmax
from service.errors import InvalidInputError
from tests.numerics.keras_reference import tf

TOL = {"rtol": 1e-6, "atol": 1e-6}
F32_MAX = np.finfo(np.float32).max


def _inputs(regime: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if regime == "random":
        return rng.normal(0, 5, (64, 10)).astype(np.float32)
    return rng.choice([-1e4, -88.8, -20.0, 0.0, 20.0, 88.8, 1e4, 3e38, -3e38], (64, 10)).astype(
        np.float32
    )


@pytest.mark.parametrize("regime", ["random", "extreme"])
def test_softmax_family_matches_tensorflow(regime: str) -> None:
    x = _inputs(regime)
    np.testing.assert_allclose(softmax(x), tf.nn.softmax(x).numpy(), **TOL)
    np.testing.assert_allclose(log_softmax(x), tf.nn.log_softmax(x).numpy(), **TOL)


@pytest.mark.parametrize("regime", ["random", "extreme"])
def test_sigmoid_family_matches_tensorflow(regime: str) -> None:
    x = _inputs(regime)
    np.testing.assert_allclose(sigmoid(x), tf.math.sigmoid(x).numpy(), **TOL)
    np.testing.assert_allclose(log_sigmoid(x), tf.math.log_sigmoid(x).numpy(), **TOL)


@pytest.mark.parametrize("temperature", [0.01, 0.5, 2.0, 100.0])
def test_temperature_divides_logits(temperature: float) -> None:
    """Compared with float64 math: dividing the shifted logits is more accurate than TF's
    float32 ``softmax(x / T)`` (whose x / T rounds before the shift)."""
    x = _inputs("random")
    scaled = x.astype(np.float64) / temperature
    expected = tf.nn.log_softmax(scaled).numpy()
    np.testing.assert_allclose(log_softmax(x, temperature=temperature), expected, **TOL)
    np.testing.assert_allclose(softmax(x, temperature=temperature), np.exp(expected), **TOL)


def test_small_temperature_does_not_overflow() -> None:
    x = np.array([[F32_MAX, 0.0, -F32_MAX]], np.float32)
    np.testing.assert_array_equal(softmax(x, temperature=1e-3), [[1.0, 0.0, 0.0]])
    assert np.isfinite(log_softmax(x, temperature=1e-3)[0, 0])


def test_all_negative_infinity_row_is_uniform() -> None:
    x = np.array([[-np.inf] * 4, [0.0, 1.0, 2.0, 3.0]], np.float32)
    p = softmax(x)
    np.testing.assert_array_equal(p[0], np.full(4, 0.25, np.float32))
    np.testing.assert_allclose(log_softmax(x)[0], np.log(np.full(4, 0.25)), **TOL)
    np.testing.assert_allclose(p[1], tf.nn.softmax(x[1]).numpy(), **TOL)


def test_positive_infinity_entries_share_the_mass() -> None:
    x = np.array([[np.inf, 0.0, np.inf, -np.inf]], np.float32)
    np.testing.assert_array_equal(softmax(x), [[0.5, 0.0, 0.5, 0.0]])


def test_axis_argument() -> None:
    x = _inputs("random")
    np.testing.assert_allclose(softmax(x.T, axis=0), softmax(x).T, **TOL)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_temperature(temperature: float) -> None:
    with pytest.raises(InvalidInputError, match="temperature"):
        softmax(np.zeros((1, 3), np.float32), temperature=temperature)


def test_normalized_logits_is_the_documented_unstable_baseline() -> None:
    x = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], np.float32)
    np.testing.assert_allclose(normalized_logits(x), [[0.0, 1 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3]])
    # not scale invariant, unlike softmax's dependence on differences only through exp
    assert not np.allclose(normalized_logits(x * 10)[0], softmax(x * 10)[0])
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(normalized_logits(np.array([[-3e38, 3e38]], np.float32))).any()
