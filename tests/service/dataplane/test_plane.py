"""The data plane directly (on the in-process service's event loop): predictions, activations,
top-k, losses, limits, readiness."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import log_softmax, sigmoid, softmax
from service.dataplane import DataPlane, LossRequest, ModelImages, Predictions, PredictOptions
from service.errors import InvalidInputError, RequestTooLargeError, UnavailableError
from service.evaluate.metrics import classification_metrics
from service.losses import compute_loss
from tests.service.helpers import CLASSES, MAX_ROWS, InProcessService
from tests.service.onnx_models import LinearModel

TOL = {"rtol": 1e-5, "atol": 1e-5}


def predict(served: InProcessService, images: np.ndarray, model: str = "cifar10", **options):
    plane = served.plane
    assert plane is not None
    return served.call(plane.predict(plane.model(model), images, PredictOptions(**options)))


def test_predict_returns_logits_and_softmax(
    served: InProcessService, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    prediction = predict(served, images.astype(np.float32))
    expected = references[("cifar10", 2)].logits(images)
    assert prediction.model.version == 2
    np.testing.assert_allclose(prediction.logits, expected, **TOL)
    np.testing.assert_allclose(prediction.scores, softmax(prediction.logits), **TOL)
    assert prediction.top_k is None


def test_uint8_and_float_pixels_agree(served: InProcessService, images: np.ndarray) -> None:
    as_uint8 = predict(served, images).logits
    as_float = predict(served, images.astype(np.float32)).logits
    np.testing.assert_array_equal(as_uint8, as_float)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "log_softmax", "none"])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_activations_and_temperature(
    served: InProcessService, images: np.ndarray, activation: str, temperature: float
) -> None:
    prediction = predict(served, images, activation=activation, temperature=temperature)
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


def test_top_k_is_sorted_and_labelled(served: InProcessService, images: np.ndarray) -> None:
    prediction = predict(served, images, top_k=3)
    assert prediction.top_k is not None
    for row, probabilities in zip(prediction.top_k, prediction.scores, strict=True):
        assert [t.class_id for t in row] == list(np.argsort(-probabilities)[:3])
        assert [t.label for t in row] == [CLASSES[t.class_id] for t in row]
        assert [t.score for t in row] == sorted((t.score for t in row), reverse=True)


def test_other_input_and_output_names(served: InProcessService, images: np.ndarray) -> None:
    prediction = predict(served, images, model="xy", top_k=1)
    assert prediction.logits.shape == (5, 4)
    assert prediction.top_k is not None
    assert prediction.top_k[0][0].label.startswith("class_")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activation": "relu"}, "activation must be one of softmax, sigmoid, log_softmax, none"),
        ({"temperature": 0.0}, "temperature input should be greater than 0"),
        ({"temperature": float("inf")}, "temperature input should be a finite number"),
        ({"top_k": -1}, "top_k input should be greater than or equal to 0"),
    ],
)
def test_options_are_validated_once_for_every_transport(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        PredictOptions.parse(**options)


def test_top_k_above_the_class_count(served: InProcessService, images: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match=r"top_k must be between 0 and 10"):
        predict(served, images, top_k=11)


def test_row_limit(served: InProcessService) -> None:
    too_many = np.zeros((MAX_ROWS + 1, 32, 32, 3), np.float32)
    with pytest.raises(RequestTooLargeError, match=f"limit is {MAX_ROWS}"):
        predict(served, too_many)


def test_wrong_image_shape(served: InProcessService) -> None:
    with pytest.raises(InvalidInputError, match=r"must have shape \[N, 32, 32, 3\]"):
        predict(served, np.zeros((2, 28, 28, 3), np.float32))
    with pytest.raises(InvalidInputError, match="with N >= 1"):
        predict(served, np.zeros((0, 32, 32, 3), np.float32))


def test_draining_still_serves_what_reaches_the_plane(
    served: InProcessService, plane: DataPlane, images: np.ndarray
) -> None:
    """Not ready (draining): probes say so, but a request that still arrives is served."""
    plane.set_ready(False)
    try:
        assert predict(served, images).logits.shape == (5, 10)
    finally:
        plane.set_ready(True)


def test_not_admitting_refuses_inference(
    served: InProcessService, plane: DataPlane, images: np.ndarray
) -> None:
    plane.set_admitting(False)
    try:
        with pytest.raises(UnavailableError, match="shutting down"):
            predict(served, images)
    finally:
        plane.set_admitting(True)


def test_loss_from_logits_is_compute_loss(served: InProcessService, plane: DataPlane) -> None:
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(6, 10)).astype(np.float32), rng.integers(0, 10, 6)
    request = LossRequest(
        "categorical_focal_crossentropy", labels, Predictions(logits, from_logits=True),
        options={"gamma": 1.5}, return_gradient=True,
    )  # fmt: skip
    outcome = served.call(plane.loss(request))
    expected = compute_loss(
        "categorical_focal_crossentropy", labels, logits=logits, gamma=1.5, return_gradient=True
    )
    assert outcome.result.value == expected.value
    np.testing.assert_array_equal(outcome.result.gradient, expected.gradient)
    assert outcome.model is None
    assert outcome.metrics is None


def test_loss_on_images_runs_the_model_and_reports_metrics(
    served: InProcessService, plane: DataPlane, images: np.ndarray
) -> None:
    labels = [0, 3, 3, 9, 1]
    model = plane.model("cifar10")
    outcome = served.call(
        plane.loss(
            LossRequest(
                "sparse_categorical_crossentropy", labels, ModelImages(model, images, "images")
            )
        )
    )
    logits = predict(served, images).logits
    expected = compute_loss("sparse_categorical_crossentropy", labels, logits=logits)
    assert outcome.result.value == pytest.approx(expected.value, rel=1e-6)
    assert outcome.model is not None
    assert outcome.model.version == 2
    assert outcome.metrics == pytest.approx(classification_metrics(logits, np.array(labels)))


def test_loss_row_limit(served: InProcessService, plane: DataPlane) -> None:
    rows = MAX_ROWS + 1
    request = LossRequest("hinge", [[1.0]] * rows, Predictions([[0.5]] * rows, from_logits=True))
    with pytest.raises(RequestTooLargeError, match="logits holds 65 rows"):
        served.call(plane.loss(request))


def test_model_listing(plane: DataPlane) -> None:
    listed = {m.name: (m.versions, m.latest) for m in plane.models.served()}
    assert listed == {"cifar10": ([1, 2], 2), "xy": ([1], 1)}


def test_classification_metrics_by_hand() -> None:
    logits = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], np.float32))
    labels = np.array([0, 1, 1])
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["top_5_accuracy"] == 1.0
    # bins of width 1/15: 0.9 alone (correct), 0.6 alone (wrong), 0.7 alone (correct)
    assert metrics["ece"] == pytest.approx((0.1 + 0.6 + 0.3) / 3, rel=1e-5)
