"""API keys on the real servers (in-process, loopback): refusals on both transports, both
ways of presenting a key, several keys at once, what stays open, metrics, and a key file
rotated while the service runs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tritonclient.utils import InferenceServerException

from service._generated.cifar10.v1 import classifier_pb2, classifier_pb2_grpc
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.client import GrpcClient, RequestError, RestClient
from service.security.keys import RECHECK_SECONDS
from tests.service.helpers import InProcessService, metric
from tests.service.security.keys import ALL_KEYS, FILE_KEY, KEY_A, KEY_B, ROTATED_KEY

MESSAGE = "missing or invalid credentials"
WRONG = "wrong-key-0123456789"


@pytest.fixture(scope="module")
def module_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    path.write_text(f"# mounted secret\n{FILE_KEY}\n")
    return path


@pytest.fixture(scope="module")
def guarded(repository_path: Path, module_key_file: Path) -> Iterator[InProcessService]:
    """The service with two keys in the settings and one in a file."""
    service = InProcessService(
        repository_path, api_keys=f"{KEY_A},{KEY_B}", api_keys_file=module_key_file
    ).start()
    yield service
    service.stop()


@pytest.fixture
def http(guarded: InProcessService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        yield client


@pytest.fixture
def channel(guarded: InProcessService) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(guarded.grpc_target) as opened:
        yield opened


REFUSED = {
    "nothing": {},
    "wrong bearer": {"Authorization": f"Bearer {WRONG}"},
    "wrong x-api-key": {"X-API-Key": WRONG},
    "prefix of a key": {"Authorization": f"Bearer {KEY_A[:-1]}"},
    "key plus a character": {"X-API-Key": KEY_A + "0"},
    "basic scheme": {"Authorization": f"Basic {KEY_A}"},
    "bearer alone": {"Authorization": "Bearer"},
}
PIXELS = {"instances": np.zeros((1, 32, 32, 3), np.uint8).tolist(), "model": "cifar10"}
V2_INFER = {
    "inputs": [{"name": "images", "shape": [1, 32, 32, 3], "datatype": "UINT8", "data": [0] * 3072}]
}
REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/models", None),
    ("GET", "/models/cifar10", None),
    ("POST", "/predict", PIXELS),
    ("POST", "/loss", {"loss": "hinge", "labels": [[1.0]], "logits": [[0.5]]}),
    ("GET", "/v2", None),
    ("GET", "/v2/models/cifar10", None),
    ("GET", "/v2/models/cifar10/ready", None),
    ("POST", "/v2/models/cifar10/infer", V2_INFER),
    ("GET", "/no/such/route", None),
]


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
def test_rest_refuses_requests_without_a_key_in_force(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    for method, path, body in REQUESTS:
        response = http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        if path.startswith("/v2"):  # the protocol's own error shape
            assert response.json() == {"error": MESSAGE}
        else:
            assert response.json() == {"error": {"code": "unauthenticated", "message": MESSAGE}}


def test_rest_refuses_before_reading_a_body(http: httpx.Client) -> None:
    """An unauthenticated client learns nothing about limits: 401, not 413 or 422."""
    response = http.post("/predict", content=b"x" * (2 << 20))
    assert response.status_code == 401


@pytest.mark.parametrize("key", [KEY_A, KEY_B, FILE_KEY])
@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_rest_serves_every_key_in_force_either_way(
    http: httpx.Client, key: str, header: str
) -> None:
    value = f"Bearer {key}" if header == "Authorization" else key
    for method, path, body in REQUESTS[:-1]:
        response = http.request(method, path, json=body, headers={header: value})
        assert response.status_code == 200, (path, response.text)
    assert http.get("/no/such/route", headers={header: value}).status_code == 404


def test_probes_metrics_and_docs_need_no_key(http: httpx.Client) -> None:
    for path in (
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        "/docs",
        "/redoc",
        "/openapi.json",
    ):
        assert http.get(path).status_code == 200, path


def test_the_clients_present_their_key(guarded: InProcessService) -> None:
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with RestClient(guarded.url, api_key=KEY_A) as rest:
        assert rest.predict(images, model="cifar10").logits.shape == (2, 10)
        assert rest.list_models()["cifar10"] == ["1", "2"]
    with GrpcClient(guarded.grpc_target, api_key=FILE_KEY) as client:
        assert client.predict(images, model="cifar10").logits.shape == (2, 10)
        assert [
            r.logits.shape for r in client.stream_predict([images, images], model="cifar10")
        ] == [(2, 10)] * 2
    with RestClient(guarded.url) as rest, pytest.raises(RequestError) as refused:
        rest.predict(images)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        401,
        "unauthenticated",
        MESSAGE,
    )
    with (
        GrpcClient(guarded.grpc_target, api_key=WRONG) as client,
        pytest.raises(RequestError) as refused,
    ):
        client.predict(images)
    assert (refused.value.code, refused.value.message) == ("UNAUTHENTICATED", MESSAGE)


def grpc_calls(channel: grpc.Channel) -> dict[str, Callable[[Any], object]]:
    """One call of each kind to each protected service, given the call's metadata."""
    classifier = classifier_pb2_grpc.ClassifierStub(channel)
    inference = v2_grpc.GRPCInferenceServiceStub(channel)
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    listing = reflection_pb2.ServerReflectionRequest(list_services="")
    return {
        "Classifier/ListModels": lambda m: classifier.ListModels(
            classifier_pb2.ListModelsRequest(), metadata=m, timeout=10
        ),
        "Classifier/StreamPredict": lambda m: list(
            classifier.StreamPredict(iter([]), metadata=m, timeout=10)
        ),
        "V2/ServerMetadata": lambda m: inference.ServerMetadata(
            v2.ServerMetadataRequest(), metadata=m, timeout=10
        ),
        "V2/ModelMetadata": lambda m: inference.ModelMetadata(
            v2.ModelMetadataRequest(name="cifar10"), metadata=m, timeout=10
        ),
        "V2/ModelReady": lambda m: inference.ModelReady(
            v2.ModelReadyRequest(name="cifar10"), metadata=m, timeout=10
        ),
        "V2/ModelInfer": lambda m: inference.ModelInfer(
            v2.ModelInferRequest(model_name="cifar10"), metadata=m, timeout=10
        ),
        "Reflection": lambda m: list(
            reflection.ServerReflectionInfo(iter([listing]), metadata=m, timeout=10)  # type: ignore[operator]
        ),
    }


REFUSED_METADATA = {
    "nothing": (),
    "wrong bearer": (("authorization", f"Bearer {WRONG}"),),
    "wrong x-api-key": (("x-api-key", WRONG),),
    "prefix of a key": (("x-api-key", KEY_B[:-1]),),
}


@pytest.mark.parametrize("metadata", REFUSED_METADATA.values(), ids=REFUSED_METADATA.keys())
def test_grpc_refuses_calls_without_a_key_in_force(channel: grpc.Channel, metadata: Any) -> None:
    for name, call in grpc_calls(channel).items():
        with pytest.raises(grpc.RpcError) as refused:
            call(metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert refused.value.details() == MESSAGE, name


@pytest.mark.parametrize("key", [KEY_A, KEY_B, FILE_KEY])
@pytest.mark.parametrize("style", ["authorization", "x-api-key"])
def test_grpc_serves_every_key_in_force_either_way(
    channel: grpc.Channel, key: str, style: str
) -> None:
    metadata = ((style, f"Bearer {key}" if style == "authorization" else key),)
    for name, call in grpc_calls(channel).items():
        if name == "V2/ModelInfer":  # authenticated: now the empty request is the problem
            with pytest.raises(grpc.RpcError) as invalid:
                call(metadata)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            call(metadata)


def test_grpc_health_and_liveness_need_no_key(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cifar10.v1.Classifier", "inference.GRPCInferenceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)  # type: ignore[attr-defined]
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    inference = v2_grpc.GRPCInferenceServiceStub(channel)
    assert inference.ServerLive(v2.ServerLiveRequest(), timeout=10).live
    assert inference.ServerReady(v2.ServerReadyRequest(), timeout=10).ready


def test_refusals_are_counted(
    guarded: InProcessService, http: httpx.Client, channel: grpc.Channel
) -> None:
    http_labels = {"transport": "http", "status": "401"}
    grpc_labels = {
        "transport": "grpc",
        "endpoint": "/cifar10.v1.Classifier/ListModels",
        "status": "UNAUTHENTICATED",
    }
    before = (
        metric(guarded.url, "service_requests_total", **http_labels),
        metric(guarded.url, "service_requests_total", **grpc_labels),
    )
    http.get("/models")
    http.post("/predict", json=PIXELS, headers={"X-API-Key": WRONG})
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            grpc_calls(channel)["Classifier/ListModels"](())
    after = (
        metric(guarded.url, "service_requests_total", **http_labels),
        metric(guarded.url, "service_requests_total", **grpc_labels),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2, 3)


def test_tritonclient_sends_the_key_as_a_header(guarded: InProcessService) -> None:
    client = triton_http.InferenceServerClient(f"127.0.0.1:{guarded.http_port}")
    try:
        tensor = triton_http.InferInput("images", [1, 32, 32, 3], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 32, 32, 3), np.float32))
        assert client.is_server_ready()  # open
        with pytest.raises(InferenceServerException, match=MESSAGE):
            client.infer("cifar10", [tensor])
        result = client.infer("cifar10", [tensor], headers={"Authorization": f"Bearer {KEY_B}"})
        assert result.as_numpy("probabilities").shape == (1, 10)
    finally:
        client.close()


def replace(path: Path, text: str) -> None:
    """As Kubernetes updates a mounted secret: a new file takes the old one's name."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def wait_for(accepted: Callable[[], bool], timeout: float = 5 * RECHECK_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not accepted():
        assert time.monotonic() < deadline, "the key file was not read again"
        time.sleep(0.1)


def test_a_rotated_key_file_takes_effect_without_a_restart(
    guarded: InProcessService, module_key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.security.keys")

    def status(key: str) -> int:
        return httpx.get(f"{guarded.url}/models", headers={"X-API-Key": key}).status_code

    original = module_key_file.read_text()
    try:
        replace(module_key_file, f"{FILE_KEY}\n{ROTATED_KEY}\n")  # 1. add the new key
        wait_for(lambda: status(ROTATED_KEY) == 200)
        assert status(FILE_KEY) == 200
        replace(module_key_file, f"{ROTATED_KEY}\n")  # 2. clients moved: remove the old one
        wait_for(lambda: status(FILE_KEY) == 401)
        assert status(ROTATED_KEY) == 200
        module_key_file.unlink()  # 3. a broken mount keeps the last good keys
        time.sleep(RECHECK_SECONDS + 0.2)
        assert status(ROTATED_KEY) == 200
        assert status(KEY_A) == 200  # the settings' keys never change
    finally:
        replace(module_key_file, original)
        wait_for(lambda: status(FILE_KEY) == 200)
    assert "read again: 3 key(s) in force" in caplog.text
    assert "keeping the 3 key(s) in force" in caplog.text
    for key in ALL_KEYS:
        assert key not in caplog.text
