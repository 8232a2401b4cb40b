"""Regressions for specific semantics: the seed article's mistakes, reductions at the edges,
and the class-id label conveniences."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInputError
from service.losses import LOSSES, compute_loss
from tests.numerics.keras_reference import keras_value, tf

TOL = {"rtol": 1e-6, "atol": 1e-6}


def test_crossentropy_from_probabilities_has_its_log() -> None:
    """The article returned -Σ y·p (0.5 here) instead of -Σ y·log p (log 2)."""
    result = compute_loss("categorical_crossentropy", [[1.0, 0.0]], probabilities=[[0.5, 0.5]])
    assert result.value == pytest.approx(np.log(2), rel=1e-6)


def test_crossentropy_from_logits_has_the_right_sign() -> None:
    """The article computed x_label + logsumexp(x); the loss is logsumexp(x) - x_label."""
    logits = np.array([[3.0, 1.0, -2.0]], np.float32)
    result = compute_loss("categorical_crossentropy", [[1.0, 0.0, 0.0]], logits=logits)
    expected = np.log(np.exp(logits.astype(np.float64)).sum()) - 3.0
    assert result.value == pytest.approx(expected, rel=1e-6)
    assert result.value > 0


def test_sparse_crossentropy_from_logits_is_one_value_per_sample() -> None:
    """The article's [B] - [B, 1] broadcast produced a [B, B] matrix."""
    logits = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    result = compute_loss(
        "sparse_categorical_crossentropy", np.arange(7) % 4, logits=logits, reduction="none"
    )
    assert result.per_sample.shape == (7,)
    assert isinstance(result.value, np.ndarray)
    assert result.value.shape == (7,)


def test_sparse_crossentropy_from_zero_probability_is_clipped_not_infinite() -> None:
    result = compute_loss("sparse_categorical_crossentropy", [0], probabilities=[[0.0, 1.0]])
    assert np.isfinite(result.value)


def test_clipping_asymmetry_matches_keras() -> None:
    """In float32 1 - 1e-7 = 0.99999988, so the two clipped extremes differ."""
    y_one = compute_loss("binary_crossentropy", [[1.0]], probabilities=[[0.0]])
    y_zero = compute_loss("binary_crossentropy", [[0.0]], probabilities=[[1.0]])
    assert y_one.value == pytest.approx(16.118095, rel=1e-6)
    assert y_zero.value == pytest.approx(15.942385, rel=1e-6)


def test_crossentropy_gradient_with_unnormalised_labels_is_the_true_derivative() -> None:
    """TF's fused kernel returns softmax - y even when labels do not sum to 1; ours is the
    derivative of the value it returns, checked by autodiff of the explicit formula."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (6, 4)).astype(np.float32)
    labels = rng.integers(0, 2, (6, 4)).astype(np.float32)  # multi-hot
    ours = compute_loss(
        "categorical_crossentropy", labels, logits=logits, reduction="sum", return_gradient=True
    )
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(labels * (tf.reduce_logsumexp(x, -1, keepdims=True) - x))
    np.testing.assert_allclose(ours.value, value.numpy(), **TOL)
    np.testing.assert_allclose(ours.gradient, tape.gradient(value, x).numpy(), **TOL)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight"])
def test_all_zero_weights_reduce_to_zero(reduction: str) -> None:
    logits = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    ours = compute_loss(
        "sparse_categorical_crossentropy",
        [0, 1],
        logits=logits,
        sample_weight=[0.0, 0.0],
        reduction=reduction,
        return_gradient=True,
    )
    expected = keras_value(
        "sparse_categorical_crossentropy",
        np.array([0, 1]),
        logits,
        from_logits=True,
        reduction=reduction,
        sample_weight=np.zeros(2, np.float32),
    )
    assert ours.value == float(expected) == 0.0
    assert ours.gradient is not None
    assert not ours.gradient.any()


def test_every_row_ignored_gives_zero() -> None:
    ours = compute_loss(
        "sparse_categorical_crossentropy",
        [255, 255],
        logits=np.ones((2, 3), np.float32),
        ignore_class=255,
        return_gradient=True,
    )
    assert ours.value == 0.0
    assert ours.gradient is not None
    assert not ours.gradient.any()


def test_scalar_sample_weight_scales_every_sample() -> None:
    logits = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    plain = compute_loss("sparse_categorical_crossentropy", [0, 1], logits=logits, reduction="sum")
    scaled = compute_loss(
        "sparse_categorical_crossentropy", [0, 1], logits=logits, reduction="sum", sample_weight=3
    )
    assert scaled.value == pytest.approx(3 * plain.value, rel=1e-6)


def test_probabilities_give_no_gradient() -> None:
    result = compute_loss(
        "binary_crossentropy", [[1.0]], probabilities=[[0.3]], return_gradient=True
    )
    assert result.gradient is None


@pytest.mark.parametrize(
    "name", ["categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge"]
)
def test_class_ids_equal_one_hot_labels(name: str) -> None:
    logits = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    ids = np.array([0, 2, 1, 1, 0])
    by_id = compute_loss(name, ids, logits=logits, reduction="none", return_gradient=True)
    by_onehot = compute_loss(
        name, np.eye(3)[ids], logits=logits, reduction="none", return_gradient=True
    )
    np.testing.assert_array_equal(by_id.per_sample, by_onehot.per_sample)
    np.testing.assert_array_equal(by_id.gradient, by_onehot.gradient)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_row_blocks_on_threads_equal_one_pass(name: str) -> None:
    """Large batches are split by rows over threads; the result must not depend on it."""
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 4, (1031, 300)).astype(np.float32)  # 3 blocks, uneven
    options = {}
    if name == "sparse_categorical_crossentropy":
        labels = rng.integers(0, 300, 1031)
        labels[::7] = 255
        options = {"ignore_class": 255}
    else:
        labels = rng.integers(0, 2, logits.shape).astype(np.float32)
    weights = rng.uniform(0, 1, 1031).astype(np.float32)
    results = [
        compute_loss(
            name,
            labels,
            logits=logits,
            sample_weight=weights,
            return_gradient=True,
            threads=threads,
            **options,
        )
        for threads in (1, 3)
    ]
    np.testing.assert_array_equal(results[0].per_sample, results[1].per_sample)
    np.testing.assert_array_equal(results[0].gradient, results[1].gradient)
    assert results[0].value == results[1].value


def test_threads_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="threads"):
        compute_loss("hinge", [[1.0]], logits=[[0.5]], threads=0)
