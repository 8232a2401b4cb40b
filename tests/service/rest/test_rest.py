"""The REST API (the in-process service over HTTP): every input form, option and endpoint, with
real values."""

from __future__ import annotations

import io

import numpy as np
import pytest
from httpx import Client
from PIL import Image

from service.activations import softmax
from service.dataplane import DataPlane
from service.losses import compute_loss
from tests.service.helpers import CLASSES, b64, encode
from tests.service.onnx_models import LinearModel

TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture
def cifar(references: dict[tuple[str, int], LinearModel]) -> LinearModel:
    return references[("cifar10", 2)]


def test_predict_instances(client: Client, images: np.ndarray, cifar: LinearModel) -> None:
    response = client.post("/predict", json={"instances": images.tolist(), "model": "cifar10"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "cifar10", "version": "2"}
    assert body["activation"] == "softmax"
    np.testing.assert_allclose(body["logits"], cifar.logits(images), **TOL)
    np.testing.assert_allclose(body["probabilities"], softmax(cifar.logits(images)), **TOL)
    assert "top_k" not in body


def test_predict_base64_png_jpeg_and_raw(
    client: Client, images: np.ndarray, cifar: LinearModel
) -> None:
    payload = [
        b64(encode(images[0])),
        b64(images[1].tobytes()),
        b64(encode(images[2], "JPEG", quality=95)),
    ]
    response = client.post("/predict", json={"images": payload, "model": "cifar10", "top_k": 2})
    assert response.status_code == 200, response.text
    logits = np.array(response.json()["logits"])
    np.testing.assert_allclose(logits[:2], cifar.logits(images[:2]), **TOL)  # lossless
    decoded_jpeg = np.asarray(Image.open(io.BytesIO(encode(images[2], "JPEG", quality=95))))
    np.testing.assert_allclose(logits[2], cifar.logits(decoded_jpeg[None])[0], **TOL)
    top = response.json()["top_k"]
    assert [len(row) for row in top] == [2, 2, 2]
    assert top[0][0]["label"] in CLASSES


def test_predict_multipart_upload(client: Client, images: np.ndarray, cifar: LinearModel) -> None:
    files = [("file", (f"img{i}.png", encode(images[i]), "image/png")) for i in range(3)]
    data = {"model": "cifar10", "version": "1", "top_k": "1", "activation": "sigmoid"}
    response = client.post("/predict", files=files, data=data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["version"] == "1"
    assert len(body["logits"]) == 3
    assert "probabilities" in body
    assert len(body["top_k"][0]) == 1


def test_predict_log_softmax_and_none(client: Client, images: np.ndarray) -> None:
    body = client.post(
        "/predict",
        json={"instances": images.tolist(), "model": "cifar10", "activation": "log_softmax"},
    ).json()
    assert "log_probabilities" in body
    assert "probabilities" not in body
    body = client.post(
        "/predict", json={"instances": images.tolist(), "model": "cifar10", "activation": "none"}
    ).json()
    assert set(body) == {"model", "activation", "logits", "calibrated", "temperature"}
    assert (body["calibrated"], body["temperature"]) == (False, 1.0)


def test_model_with_other_tensor_names(client: Client, images: np.ndarray) -> None:
    response = client.post(
        "/predict", json={"instances": images.tolist(), "model": "xy", "top_k": 4}
    )
    assert response.status_code == 200
    assert np.array(response.json()["logits"]).shape == (5, 4)


def test_loss_from_logits_matches_compute_loss(client: Client) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (8, 10)).astype(np.float32)
    labels = rng.integers(0, 2, (8, 10)).astype(np.float32)
    weights = rng.uniform(0, 1, 8).astype(np.float32)
    body = {
        "loss": "binary_focal_crossentropy",
        "labels": labels.tolist(),
        "logits": logits.tolist(),
        "reduction": "mean_with_sample_weight",
        "sample_weight": weights.tolist(),
        "gamma": 3.0,
        "alpha": 0.4,
        "apply_class_balancing": True,
        "return_gradient": True,
    }
    response = client.post("/loss", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    expected = compute_loss(
        "binary_focal_crossentropy", labels, logits=logits, reduction="mean_with_sample_weight",
        sample_weight=weights, gamma=3.0, alpha=0.4, apply_class_balancing=True, return_gradient=True,
    )  # fmt: skip
    assert got["value"] == pytest.approx(expected.value, rel=1e-6)
    np.testing.assert_allclose(got["per_sample"], expected.per_sample, rtol=1e-6)
    np.testing.assert_allclose(got["gradient"], expected.gradient, rtol=1e-6, atol=1e-9)
    assert "metrics" not in got


def test_loss_from_probabilities(client: Client) -> None:
    body = {
        "loss": "categorical_crossentropy",
        "labels": [1, 0],
        "probabilities": [[0.2, 0.8], [0.5, 0.5]],
    }
    got = client.post("/loss", json=body).json()
    assert got["value"] == pytest.approx((-np.log(0.8) - np.log(0.5)) / 2, rel=1e-6)
    assert "gradient" not in got


def test_loss_on_images_reports_metrics(
    client: Client, images: np.ndarray, cifar: LinearModel
) -> None:
    labels = [2, 2, 5, 0, 9]
    payload = {
        "loss": "sparse_categorical_crossentropy",
        "labels": labels,
        "images": [b64(encode(i)) for i in images],
        "model": "cifar10",
    }
    got = client.post("/loss", json=payload).json()
    expected = compute_loss("sparse_categorical_crossentropy", labels, logits=cifar.logits(images))
    assert got["value"] == pytest.approx(expected.value, rel=1e-5)
    assert got["model"] == {"name": "cifar10", "version": "2"}
    assert set(got["metrics"]) == {"accuracy", "top_5_accuracy", "ece"}
    predicted = cifar.logits(images).argmax(axis=1)
    assert got["metrics"]["accuracy"] == pytest.approx(np.mean(predicted == np.array(labels)))


def test_models_listing_and_metadata(client: Client) -> None:
    listing = client.get("/models").json()["models"]
    ready = [{"version": "1", "state": "READY", "reason": "", "calibration_temperature": None}]
    second = {"version": "2", "state": "READY", "reason": "", "calibration_temperature": None}
    assert listing == [
        {"name": "cifar10", "versions": ["1", "2"], "latest": "2", "labels": {"stable": "1"},
         "states": [*ready, second]},
        {"name": "xy", "versions": ["1"], "latest": "1", "labels": {}, "states": ready},
    ]  # fmt: skip
    meta = client.get("/models/cifar10").json()
    assert meta["version"] == "2"
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 32, 32, 3]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert meta["classes"] == CLASSES
    assert meta["dataset"] == "synthetic"
    assert meta["device"] == "CPUExecutionProvider"
    assert meta["calibration"] is None
    assert client.get("/models/cifar10/versions/1").json()["version"] == "1"
    assert client.get("/models/xy").json()["inputs"][0]["name"] == "x"


def test_health(client: Client, plane: DataPlane) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    plane.set_ready(False)
    try:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
    finally:
        plane.set_ready(True)


def test_metrics_count_requests_and_batches(client: Client, images: np.ndarray) -> None:
    client.post("/predict", json={"instances": images.tolist(), "model": "xy"})
    client.post("/predict", json={"instances": "nope"})
    text = client.get("/metrics").text
    assert 'service_requests_total{endpoint="/predict",status="200",transport="http"}' in text
    assert 'service_requests_total{endpoint="/predict",status="422",transport="http"}' in text
    assert 'service_request_duration_seconds_bucket{endpoint="/predict"' in text
    assert 'service_inference_batch_size_count{model="xy",version="1"}' in text
    assert (
        'service_model_info{dataset="synthetic",model="cifar10",provider="CPUExecutionProvider",version="2"} 1.0'
        in text
    )


def test_openapi_documents_both_predict_content_types(client: Client) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    assert "/loss" in spec["paths"]
    assert client.get("/docs").status_code == 200
