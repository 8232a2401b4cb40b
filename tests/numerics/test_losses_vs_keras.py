"""Every loss x option x reduction x input regime against Keras 3 / TensorFlow itself."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

from service.losses import LOSSES, REDUCTIONS, compute_loss
from tests.numerics.keras_reference import exact_categorical_focal, keras_gradient, keras_value

TOL = {"rtol": 1e-6, "atol": 1e-6}
N, C = 12, 5
IGNORED = -1

OPTIONS: dict[str, list[dict[str, Any]]] = {
    "categorical_crossentropy": [{}, {"label_smoothing": 0.1}],
    "sparse_categorical_crossentropy": [{}, {"ignore_class": IGNORED}],
    "binary_crossentropy": [{}, {"label_smoothing": 0.2}],
    "binary_focal_crossentropy": [
        {},
        {"gamma": 0.5, "alpha": 0.4, "apply_class_balancing": True},
        {"gamma": 3.0, "label_smoothing": 0.1},
        {"gamma": 0.0},
    ],
    "categorical_focal_crossentropy": [
        {},
        {"alpha": [0.1, 0.2, 0.3, 0.25, 0.15], "gamma": 1.5},
        {"label_smoothing": 0.1},
        {"gamma": 0.0},
    ],
    "hinge": [{}],
    "squared_hinge": [{}],
    "categorical_hinge": [{}],
}
LABEL_KINDS = {"sparse_categorical_crossentropy": ["hard"]}  # class ids only
CASES = [
    (name, options, label_kind)
    for name in LOSSES
    for options in OPTIONS[name]
    for label_kind in LABEL_KINDS.get(name, ["hard", "soft"])
]
# Keras clips categorical focal even from logits; its gradients are checked against the exact
# formula in test_categorical_focal_exact instead.
GRADIENT_CASES = [case for case in CASES if case[0] != "categorical_focal_crossentropy"]


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def _softmax64(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def make_inputs(name: str, regime: str, label_kind: str, seed: int) -> dict[str, np.ndarray]:
    """Labels (ours and Keras's form), logits and probabilities for one test case."""
    rng = np.random.default_rng(seed)
    if regime == "random":
        logits = rng.normal(0, 3, (N, C))
    else:  # saturating: |logits| up to 1e4, probabilities exactly 0 and 1
        logits = rng.choice([-1e4, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1e4], (N, C))
    logits = logits.astype(np.float32)
    binary = name.startswith("binary") or name in ("hinge", "squared_hinge")
    if binary:
        with np.errstate(over="ignore"):
            probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    else:
        probabilities = _softmax64(logits.astype(np.float64))
    probabilities = probabilities.astype(np.float32)

    ids: np.ndarray = rng.integers(0, C, N)
    labels: np.ndarray
    onehot = np.eye(C, dtype=np.float32)[ids]
    if name == "sparse_categorical_crossentropy":
        labels = ids.copy()
        keras_labels = labels
    elif binary and label_kind == "hard":
        keras_labels = labels = rng.integers(0, 2, (N, C)).astype(np.float32)
    elif name in ("hinge", "squared_hinge"):  # "soft": already signed ±1 labels
        keras_labels = labels = rng.choice([-1.0, 1.0], (N, C)).astype(np.float32)
    elif binary:
        keras_labels = labels = rng.uniform(0, 1, (N, C)).astype(np.float32)
    elif label_kind == "hard":
        labels, keras_labels = ids, onehot  # ours one-hot encodes class ids itself
    else:
        keras_labels = labels = rng.dirichlet(np.ones(C), N).astype(np.float32)
    return {
        "labels": labels,
        "keras_labels": keras_labels,
        "logits": logits,
        "probabilities": probabilities,
    }


def _with_ignored(inputs: dict[str, np.ndarray], options: dict[str, Any]) -> None:
    if "ignore_class" in options:
        inputs["labels"][[1, 4, 7]] = options["ignore_class"]


@pytest.mark.parametrize(("name", "options", "label_kind"), CASES, ids=str)
@pytest.mark.parametrize("regime", ["random", "saturating"])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_value_matches_keras(
    name: str,
    options: dict[str, Any],
    regime: str,
    label_kind: str,
    from_logits: bool,
    weighted: bool,
) -> None:
    inputs = make_inputs(name, regime, label_kind, seed=_seed(name, regime, label_kind))
    _with_ignored(inputs, options)
    predictions = inputs["logits"] if from_logits else inputs["probabilities"]
    weights = np.random.default_rng(7).uniform(0, 2, N).astype(np.float32) if weighted else None
    if weights is not None:
        weights[3] = 0
    exact_focal = name == "categorical_focal_crossentropy" and from_logits
    for reduction in REDUCTIONS:
        kwarg = {"logits": predictions} if from_logits else {"probabilities": predictions}
        ours = compute_loss(
            name, inputs["labels"], reduction=reduction, sample_weight=weights, **kwarg, **options
        )
        if exact_focal:
            continue  # compared with the exact formula in test_categorical_focal_exact
        expected = keras_value(
            name,
            inputs["keras_labels"],
            predictions,
            from_logits=from_logits,
            reduction=reduction,
            sample_weight=weights,
            **options,
        )
        np.testing.assert_allclose(ours.value, expected, **TOL, err_msg=reduction)
        if reduction == "none":
            np.testing.assert_allclose(ours.per_sample, expected, **TOL)
        assert ours.gradient is None


@pytest.mark.parametrize(("name", "options", "label_kind"), GRADIENT_CASES, ids=str)
@pytest.mark.parametrize("regime", ["random", "saturating"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_matches_tensorflow_autodiff(
    name: str, options: dict[str, Any], regime: str, label_kind: str, reduction: str
) -> None:
    inputs = make_inputs(name, regime, label_kind, seed=_seed(name, regime, label_kind))
    _with_ignored(inputs, options)
    weights = np.random.default_rng(11).uniform(0, 2, N).astype(np.float32)
    ours = compute_loss(
        name,
        inputs["labels"],
        logits=inputs["logits"],
        reduction=reduction,
        sample_weight=weights,
        return_gradient=True,
        **options,
    )
    expected = keras_gradient(
        name,
        inputs["keras_labels"],
        inputs["logits"],
        reduction=reduction,
        sample_weight=weights,
        **options,
    )
    assert ours.gradient is not None
    assert ours.gradient.shape == inputs["logits"].shape
    assert np.isfinite(ours.gradient).all()
    defined = np.isfinite(expected)
    if not defined.all():
        # TF's autodiff of (1 - p_t)^gamma is NaN at p_t = 1 for gamma < 1; the limit is 0.
        assert name == "binary_focal_crossentropy"
        assert options.get("gamma", 2.0) < 1
    np.testing.assert_allclose(ours.gradient[defined], expected[defined], **TOL)


@pytest.mark.parametrize("options", OPTIONS["categorical_focal_crossentropy"], ids=str)
@pytest.mark.parametrize("regime", ["random", "saturating"])
@pytest.mark.parametrize("label_kind", ["hard", "soft"])
def test_categorical_focal_exact(options: dict[str, Any], regime: str, label_kind: str) -> None:
    """From logits the categorical focal loss is exact (Keras clips); compared with the same
    formula evaluated by TensorFlow in float64, value and autodiff gradient."""
    inputs = make_inputs("categorical_focal_crossentropy", regime, label_kind, seed=5)
    ours = compute_loss(
        "categorical_focal_crossentropy",
        inputs["labels"],
        logits=inputs["logits"],
        reduction="none",
        return_gradient=True,
        **options,
    )
    smoothing = options.get("label_smoothing", 0.0)
    y = inputs["keras_labels"] * (1 - smoothing) + smoothing / C
    per_sample, gradient = exact_categorical_focal(
        y, inputs["logits"], alpha=options.get("alpha", 0.25), gamma=options.get("gamma", 2.0)
    )
    np.testing.assert_allclose(ours.per_sample, per_sample, **TOL)
    np.testing.assert_allclose(ours.gradient, gradient, **TOL)


@pytest.mark.parametrize("options", OPTIONS["categorical_focal_crossentropy"], ids=str)
def test_categorical_focal_equals_keras_where_keras_does_not_clip(options: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, (N, C)).astype(np.float32)
    labels = rng.dirichlet(np.ones(C), N).astype(np.float32)
    for reduction in REDUCTIONS:
        ours = compute_loss(
            "categorical_focal_crossentropy", labels, logits=logits, reduction=reduction, **options
        )
        expected = keras_value(
            "categorical_focal_crossentropy",
            labels,
            logits,
            from_logits=True,
            reduction=reduction,
            **options,
        )
        np.testing.assert_allclose(ours.value, expected, **TOL)


def test_categorical_focal_documented_deviation() -> None:
    """Keras gives 4.0295 for logits [-100, 100] with label [1, 0]; the exact value is 50."""
    ours = compute_loss(
        "categorical_focal_crossentropy", [[1.0, 0.0]], logits=[[-100.0, 100.0]], reduction="sum"
    )
    keras = keras_value(
        "categorical_focal_crossentropy",
        np.array([[1.0, 0.0]], np.float32),
        np.array([[-100.0, 100.0]], np.float32),
        from_logits=True,
        reduction="sum",
    )
    assert ours.value == pytest.approx(0.25 * 200.0, rel=1e-6)
    assert float(keras) == pytest.approx(4.0295, rel=1e-4)


@pytest.mark.parametrize("num_classes", [10, 1000])
def test_sparse_crossentropy_large_batch(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    logits = rng.normal(0, 10, (4096, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, 4096)
    ours = compute_loss("sparse_categorical_crossentropy", labels, logits=logits)
    expected = keras_value(
        "sparse_categorical_crossentropy",
        labels,
        logits,
        from_logits=True,
        reduction="sum_over_batch_size",
    )
    np.testing.assert_allclose(ours.value, expected, **TOL)


def test_binary_one_output_vector_shape() -> None:
    """A one-output binary model's logits may be given as [N]; the gradient keeps that shape."""
    logits = np.array([-3.0, 0.5, 8.0, -0.1], np.float32)
    labels = np.array([0, 1, 1, 1], np.float32)
    ours = compute_loss("binary_crossentropy", labels, logits=logits, return_gradient=True)
    expected = keras_value(
        "binary_crossentropy",
        labels[:, None],
        logits[:, None],
        from_logits=True,
        reduction="sum_over_batch_size",
    )
    np.testing.assert_allclose(ours.value, expected, **TOL)
    assert ours.gradient is not None
    assert ours.gradient.shape == (4,)
