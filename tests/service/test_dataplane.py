"""The data plane directly: predictions, activations, top-k, losses, limits, readiness."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import log_softmax, sigmoid, softmax
from service.dataplane import DataPlane
from service.errors import InvalidInputError, RequestTooLargeError, UnavailableError
from service.evaluation import classification_metrics
from service.losses import compute_loss
from service.types import LossRequest, PredictOptions
from tests.service.conftest import CLASSES, MAX_BATCH
from tests.service.onnx_models import LinearModel

TOL = {"rtol": 1e-5, "atol": 1e-5}


def test_predict_returns_logits_and_softmax(
    plane: DataPlane, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    prediction = plane.predict(images.astype(np.float32), model="cifar10")
    expected = references[("cifar10", 2)].logits(images)
    assert prediction.model.version == 2
    np.testing.assert_allclose(prediction.logits, expected, **TOL)
    np.testing.assert_allclose(prediction.scores, softmax(prediction.logits), **TOL)
    assert prediction.top_k is None


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "log_softmax", "none"])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_activations_and_temperature(
    plane: DataPlane, images: np.ndarray, activation: str, temperature: float
) -> None:
    options = PredictOptions(activation=activation, temperature=temperature)
    prediction = plane.predict(images.astype(np.float32), model="cifar10", options=options)
    expected = {
        "softmax": softmax(prediction.logits, temperature=temperature),
        "log_softmax": log_softmax(prediction.logits, temperature=temperature),
        "sigmoid": sigmoid(prediction.logits / np.float32(temperature)),
        "none": None,
    }[activation]
    if expected is None:
        assert prediction.scores is None
    else:
        np.testing.assert_allclose(prediction.scores, expected, **TOL)


def test_top_k_is_sorted_and_labelled(plane: DataPlane, images: np.ndarray) -> None:
    options = PredictOptions(top_k=3)
    prediction = plane.predict(images.astype(np.float32), model="cifar10", options=options)
    assert prediction.top_k is not None
    for row, probabilities in zip(prediction.top_k, prediction.scores, strict=True):
        assert [t.class_id for t in row] == list(np.argsort(-probabilities)[:3])
        assert [t.label for t in row] == [CLASSES[t.class_id] for t in row]
        assert [t.score for t in row] == sorted((t.score for t in row), reverse=True)


def test_other_input_and_output_names(plane: DataPlane, images: np.ndarray) -> None:
    prediction = plane.predict(
        images.astype(np.float32), model="xy", options=PredictOptions(top_k=1)
    )
    assert prediction.logits.shape == (5, 4)
    assert prediction.top_k is not None
    assert prediction.top_k[0][0].label.startswith("class_")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (PredictOptions(activation="relu"), "activation must be one of"),
        (PredictOptions(temperature=0.0), "temperature must be a finite number > 0"),
        (PredictOptions(top_k=11), r"top_k must be between 0 and 10"),
        (PredictOptions(top_k=-1), "top_k must be >= 0"),
    ],
)
def test_bad_options(
    plane: DataPlane, images: np.ndarray, options: PredictOptions, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        plane.predict(images.astype(np.float32), model="cifar10", options=options)


def test_batch_limit(plane: DataPlane) -> None:
    too_many = np.zeros((MAX_BATCH + 1, 32, 32, 3), np.float32)
    with pytest.raises(RequestTooLargeError, match=f"limit is {MAX_BATCH}"):
        plane.predict(too_many, model="cifar10")


def test_wrong_image_shape(plane: DataPlane) -> None:
    with pytest.raises(InvalidInputError, match=r"must have shape \[N, 32, 32, 3\]"):
        plane.predict(np.zeros((2, 28, 28, 3), np.float32), model="cifar10")


def test_not_ready_refuses_inference(plane: DataPlane, images: np.ndarray) -> None:
    plane.set_ready(False)
    try:
        with pytest.raises(UnavailableError):
            plane.predict(images.astype(np.float32), model="cifar10")
    finally:
        plane.set_ready(True)


def test_loss_from_logits_is_compute_loss(plane: DataPlane) -> None:
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(6, 10)).astype(np.float32), rng.integers(0, 10, 6)
    request = LossRequest(
        "categorical_focal_crossentropy", labels.tolist(), logits=logits.tolist(),
        options={"gamma": 1.5}, return_gradient=True,
    )  # fmt: skip
    outcome = plane.loss(request)
    expected = compute_loss(
        "categorical_focal_crossentropy", labels, logits=logits, gamma=1.5, return_gradient=True
    )
    assert outcome.result.value == expected.value
    np.testing.assert_array_equal(outcome.result.gradient, expected.gradient)
    assert outcome.model is None
    assert outcome.metrics is None


def test_loss_on_images_runs_the_model_and_reports_metrics(
    plane: DataPlane, images: np.ndarray
) -> None:
    labels = [0, 3, 3, 9, 1]
    outcome = plane.loss(
        LossRequest(
            "sparse_categorical_crossentropy",
            labels,
            images=images.astype(np.float32),
            model="cifar10",
        )
    )
    logits = plane.predict(images.astype(np.float32), model="cifar10").logits
    expected = compute_loss("sparse_categorical_crossentropy", labels, logits=logits)
    assert outcome.result.value == pytest.approx(expected.value, rel=1e-6)
    assert outcome.model is not None
    assert outcome.model.version == 2
    assert outcome.metrics == pytest.approx(classification_metrics(logits, np.array(labels)))


def test_loss_needs_exactly_one_input(plane: DataPlane) -> None:
    with pytest.raises(InvalidInputError, match="exactly one of logits, probabilities"):
        plane.loss(LossRequest("hinge", [[1.0]], logits=[[0.1]], probabilities=[[0.2]]))
    with pytest.raises(InvalidInputError, match="exactly one of logits, probabilities"):
        plane.loss(LossRequest("hinge", [[1.0]]))


def test_loss_batch_limit(plane: DataPlane) -> None:
    rows = MAX_BATCH + 1
    with pytest.raises(RequestTooLargeError):
        plane.loss(LossRequest("hinge", [[1.0]] * rows, logits=[[0.5]] * rows))


def test_classification_metrics_by_hand() -> None:
    logits = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], np.float32))
    labels = np.array([0, 1, 1])
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["top_5_accuracy"] == 1.0
    # bins of width 1/15: 0.9 alone (correct), 0.6 alone (wrong), 0.7 alone (correct)
    assert metrics["ece"] == pytest.approx((0.1 + 0.6 + 0.3) / 3, rel=1e-5)
