"""``POST /calibrate`` and ``cifar10.v1.Classifier/Calibrate`` against the real servers
(in-process, on loopback) with the real clients: the same temperature and figures as
:func:`~service.calibration.fit_temperature` and :class:`~service.calibration.QualitySums` on
the same rows, from logits, probabilities or images, and every bad input refused with the
status the other endpoints give, naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from service.calibration import Quality, QualitySums, fit_temperature
from service.client import CalibrationResult, GrpcClient, RequestError, RestClient
from tests.service.helpers import MAX_ROWS, InProcessService
from tests.service.helpers import encode as png

FIGURES = ("nll", "ece", "brier", "accuracy", "mean_confidence")


@pytest.fixture(scope="module")
def rest(served: InProcessService) -> Iterator[RestClient]:
    with RestClient(served.url) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_client(served: InProcessService) -> Iterator[GrpcClient]:
    with GrpcClient(served.grpc_target) as client:
        yield client


@pytest.fixture(params=["rest", "grpc"])
def either(request: pytest.FixtureRequest, rest: RestClient, grpc_client: GrpcClient) -> Any:
    """Each client in turn: both must answer alike."""
    return rest if request.param == "rest" else grpc_client


def overconfident(
    rows: int = 48, classes: int = 10, seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """float32 logits three times sharper than the labels drawn from them warrant (T ≈ 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (rows, classes)).astype(np.float32)
    truth = np.exp(logits.astype(np.float64) / 3.0)
    truth /= truth.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in truth])
    return logits, labels.astype(np.int64)


def expected(logits: np.ndarray, labels: np.ndarray) -> tuple[float, Quality, Quality]:
    z = logits.astype(np.float64)
    fit = fit_temperature(lambda: [(z, labels)])
    before = QualitySums.of(z, labels).quality()
    after = QualitySums.of(z, labels, fit.temperature).quality()
    return fit.temperature, before, after


def assert_figures(got: dict[str, float], want: Quality) -> None:
    assert set(got) == set(FIGURES)
    for name in FIGURES:
        assert got[name] == pytest.approx(getattr(want, name), rel=1e-6, abs=1e-9), name


def assert_same(a: CalibrationResult, b: CalibrationResult, rel: float) -> None:
    assert a.temperature == pytest.approx(b.temperature, rel=rel)
    assert a.rows == b.rows
    for name in FIGURES:
        assert a.before[name] == pytest.approx(b.before[name], rel=rel, abs=1e-9)
        assert a.after[name] == pytest.approx(b.after[name], rel=rel, abs=1e-9)


def test_rest_and_grpc_answer_the_fit_of_the_same_logits(
    rest: RestClient, grpc_client: GrpcClient
) -> None:
    logits, labels = overconfident()
    temperature, before, after = expected(logits, labels)
    assert 1.5 < temperature < 6  # the rows are overconfident: T > 1
    for client in (rest, grpc_client):
        got = client.calibrate(labels, logits=logits)
        assert got.temperature == pytest.approx(temperature, rel=1e-6)
        assert (got.rows, got.at_bound, got.model, got.version) == (48, False, None, None)
        assert got.iterations >= 2
        assert_figures(got.before, before)
        assert_figures(got.after, after)
        assert got.after["nll"] < got.before["nll"]
    assert_same(
        rest.calibrate(labels, logits=logits), grpc_client.calibrate(labels, logits=logits), 1e-12
    )


def test_labels_as_a_column_and_as_integral_floats(either: Any) -> None:
    logits, labels = overconfident(rows=12)
    plain = either.calibrate(labels, logits=logits)
    assert_same(either.calibrate(labels[:, None], logits=logits), plain, 1e-12)
    assert_same(either.calibrate(labels.astype(np.float32), logits=logits), plain, 1e-12)


def test_probabilities_give_what_their_logarithms_give(either: Any) -> None:
    logits, labels = overconfident()
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    from_probabilities = either.calibrate(labels, probabilities=probabilities)
    from_logs = either.calibrate(labels, logits=np.log(probabilities))
    from_logits = either.calibrate(labels, logits=logits)
    assert_same(from_probabilities, from_logs, 1e-5)
    assert_same(from_probabilities, from_logits, 1e-5)  # softmax ignores a shift per row


def test_images_give_what_the_models_logits_give(rest: RestClient, grpc_client: GrpcClient) -> None:
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 10, 24)
    for version in (None, 1):
        logits = rest.predict(images, model="cifar10", version=version).logits
        temperature, before, after = expected(logits, labels)
        results = [
            client.calibrate(labels, images=shown, model="cifar10", version=version)
            for client in (rest, grpc_client)
            for shown in (images, [png(image) for image in images])
        ]
        for got in results:
            assert got.temperature == pytest.approx(temperature, rel=1e-6)
            assert_figures(got.before, before)
            assert_figures(got.after, after)
            assert (got.model, got.version) == ("cifar10", "2" if version is None else "1")


def test_the_other_models_logits(either: Any) -> None:
    """A model of 4 classes: class id 4 is out of its range; 0..3 are fitted."""
    images = np.random.default_rng(5).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    got = either.calibrate([0, 1, 2, 3, 0, 1], images=images, model="xy")
    assert (got.model, got.version, got.rows) == ("xy", "1", 6)
    with pytest.raises(RequestError) as caught:
        either.calibrate([0, 1, 2, 3, 4, 1], images=images, model="xy")
    assert "class-id labels must lie in [0, 4), got 4" in caught.value.message


def test_separable_rows_stop_at_a_bound(either: Any) -> None:
    logits = np.array([[4.0, 0.0], [0.0, 4.0], [3.0, 1.0]], np.float32)
    got = either.calibrate([0, 1, 0], logits=logits)
    assert got.at_bound
    assert got.temperature == pytest.approx(1e-3)
    assert got.after["accuracy"] == 1.0


ONE_ROW = [[2.0, 1.0, 0.0]]
BAD: list[tuple[str, Callable[[Any], Any], str, str]] = [
    (
        "class id beyond the classes",
        lambda c: c.calibrate([3], logits=ONE_ROW),
        "labels",
        "class-id labels must lie in [0, 3), got 3",
    ),
    (
        "negative class id",
        lambda c: c.calibrate([-1], logits=ONE_ROW),
        "labels",
        "class-id labels must lie in [0, 3), got -1",
    ),
    (
        "float labels",
        lambda c: c.calibrate([0.5], logits=ONE_ROW),
        "labels",
        "labels must be integer class ids, got 0.5",
    ),
    (
        "one-hot labels",
        lambda c: c.calibrate([[1, 0, 0]], logits=ONE_ROW),
        "labels",
        "labels must be class ids of shape [N] (or [N, 1]), got shape [1, 3]",
    ),
    (
        "more labels than rows",
        lambda c: c.calibrate([0, 1], logits=ONE_ROW),
        "labels",
        "labels must hold one class id per row of logits (1), got 2",
    ),
    (
        "fewer labels than images",
        lambda c: c.calibrate([0], images=np.zeros((2, 32, 32, 3), np.uint8), model="cifar10"),
        "labels",
        "one class id per row of",
    ),
    (
        "probabilities above 1",
        lambda c: c.calibrate([0], probabilities=[[1.5, -0.5]]),
        "probabilities",
        "probabilities must lie within [0, 1]",
    ),
    (
        "probabilities not summing to 1",
        lambda c: c.calibrate([0, 1], probabilities=[[0.5, 0.5], [0.9, 0.3]]),
        "probabilities",
        "each row of probabilities must sum to 1 (within 0.001); row 1 sums to 1.2",
    ),
    (
        "one class",
        lambda c: c.calibrate([0], logits=[[1.0]]),
        "logits",
        "logits must have shape [N, C] with N >= 1 and C >= 2 classes, got shape [1, 1]",
    ),
    (
        "logits of one dimension",
        lambda c: c.calibrate([0, 1], logits=[1.0, 2.0]),
        "logits",
        "got shape [2]",
    ),
]


@pytest.mark.parametrize(("case", "call", "field", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_are_invalid_arguments_naming_the_field(
    rest: RestClient,
    grpc_client: GrpcClient,
    case: str,
    call: Callable[[Any], Any],
    field: str,
    fragment: str,
) -> None:
    with pytest.raises(RequestError) as by_rest:
        call(rest)
    assert (by_rest.value.status, by_rest.value.code) == (400, "invalid_argument")
    with pytest.raises(RequestError) as by_grpc:
        call(grpc_client)
    assert by_grpc.value.code == "INVALID_ARGUMENT"
    for caught in (by_rest, by_grpc):
        assert fragment in caught.value.message
        assert caught.value.message.startswith(field) or f" {field}" in caught.value.message


def test_too_many_rows_is_what_the_other_endpoints_answer(
    rest: RestClient, grpc_client: GrpcClient
) -> None:
    rows = MAX_ROWS + 1
    logits = np.zeros((rows, 3), np.float32)
    images = np.zeros((rows, 32, 32, 3), np.uint8)
    for call in (
        lambda c: c.calibrate(np.zeros(rows, np.int64), logits=logits),
        lambda c: c.calibrate(np.zeros(rows, np.int64), images=images, model="cifar10"),
    ):
        with pytest.raises(RequestError) as by_rest:
            call(rest)
        assert (by_rest.value.status, by_rest.value.code) == (413, "resource_exhausted")
        with pytest.raises(RequestError) as by_grpc:
            call(grpc_client)
        assert by_grpc.value.code == "RESOURCE_EXHAUSTED"
        for caught in (by_rest, by_grpc):
            assert f"holds {rows} rows; the limit is {MAX_ROWS}" in caught.value.message
    with pytest.raises(RequestError) as loss:
        rest.loss("sparse_categorical_crossentropy", np.zeros(rows, np.int64), logits=logits)
    assert loss.value.status == 413


def test_unknown_model_and_missing_inputs(either: Any) -> None:
    images = np.zeros((1, 32, 32, 3), np.uint8)
    with pytest.raises(RequestError) as caught:
        either.calibrate([0], images=images, model="nope")
    assert caught.value.code in ("not_found", "NOT_FOUND")
    with pytest.raises(RequestError) as caught:
        either.calibrate([0])
    assert caught.value.code in ("invalid_argument", "INVALID_ARGUMENT")
    assert "give" in caught.value.message
    assert "logits" in caught.value.message


def test_rest_schema_errors_and_openapi(client: httpx.Client) -> None:
    logits = [[1.0, 0.0]]
    wrong_type = client.post("/calibrate", json={"labels": "zero", "logits": logits})
    assert wrong_type.status_code == 422
    unknown = client.post("/calibrate", json={"labels": [0], "logits": logits, "loss": "x"})
    assert unknown.status_code == 422
    both = client.post(
        "/calibrate", json={"labels": [0], "logits": logits, "probabilities": logits}
    )
    assert both.status_code == 400
    assert "exactly one of" in both.json()["error"]["message"]
    ragged = client.post("/calibrate", json={"labels": [0, 1], "logits": [[1.0, 0.0], [1.0]]})
    assert ragged.status_code == 400
    assert ragged.json()["error"]["message"] == "logits must be a rectangular numeric array"
    booleans = client.post("/calibrate", json={"labels": [True], "logits": logits})
    assert booleans.status_code == 400
    assert "labels must hold integer class ids" in booleans.json()["error"]["message"]
    body = client.post("/calibrate", json={"labels": [0, 1], "logits": [[2.0, 0.0], [0.0, 1.0]]})
    assert body.status_code == 200
    assert set(body.json()) == {
        "temperature", "rows", "iterations", "at_bound", "before", "after", "model",
    }  # fmt: skip
    assert body.json()["model"] is None

    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/calibrate"]["post"]
    assert {"200", "400", "404", "413", "422", "503"} <= set(operation["responses"])
    schemas = spec["components"]["schemas"]
    request = schemas["CalibrateRequest"]
    assert len(request["oneOf"]) == 4
    assert request["additionalProperties"] is False
    assert request["properties"]["labels"]["maxItems"] == MAX_ROWS
    assert set(schemas["CalibrateResponse"]["properties"]) == set(body.json())
    assert set(schemas["CalibrationQualityBody"]["properties"]) == set(FIGURES)
