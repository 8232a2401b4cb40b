"""Standard Open Inference Protocol clients (tritonclient, grpc and http) against the real
server, with no code written for this server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from service.activations import log_softmax, softmax
from tests.service.helpers import InProcessService
from tests.service.onnx_models import LinearModel

TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(params=["grpc", "http"])
def triton(
    request: pytest.FixtureRequest, served: InProcessService
) -> Iterator[tuple[str, object]]:
    if request.param == "grpc":
        client = triton_grpc.InferenceServerClient(served.grpc_target)
    else:
        client = triton_http.InferenceServerClient(f"127.0.0.1:{served.http_port}")
    yield request.param, client
    client.close()


def _module(kind: str):
    return triton_grpc if kind == "grpc" else triton_http


def test_health_and_metadata(triton) -> None:
    kind, client = triton
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("cifar10")
    assert client.is_model_ready("cifar10", "1")
    server = client.get_server_metadata()
    model = (
        client.get_model_metadata("cifar10", as_json=True)
        if kind == "grpc"
        else client.get_model_metadata("cifar10")
    )
    name = server.name if kind == "grpc" else server["name"]
    assert name == "cifar10-inference-service"
    assert model["name"] == "cifar10"
    assert model["versions"] == ["1", "2"]
    assert model["inputs"][0]["name"] == "images"
    assert model["inputs"][0]["datatype"] == "FP32"
    assert [int(d) for d in model["inputs"][0]["shape"]] == [-1, 32, 32, 3]
    assert [o["name"] for o in model["outputs"]] == ["logits", "probabilities"]


@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_onnxruntime(
    triton,
    datatype: str,
    binary: bool,
    images: np.ndarray,
    references: dict[tuple[str, int], LinearModel],
) -> None:
    kind, client = triton
    module = _module(kind)
    pixels = images.astype(np.float32 if datatype == "FP32" else np.uint8)
    tensor = module.InferInput("images", list(pixels.shape), datatype)
    if kind == "http":
        tensor.set_data_from_numpy(pixels, binary_data=binary)
    else:
        tensor.set_data_from_numpy(pixels)
    result = client.infer("cifar10", [tensor])
    expected = references[("cifar10", 2)].logits(images)
    np.testing.assert_allclose(result.as_numpy("logits"), expected, **TOL)
    np.testing.assert_allclose(result.as_numpy("probabilities"), softmax(expected), **TOL)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_requested_outputs_version_and_activation(
    triton, binary: bool, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    kind, client = triton
    module = _module(kind)
    tensor = module.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    outputs = [
        module.InferRequestedOutput(
            "probabilities", **({"binary_data": binary} if kind == "http" else {})
        )
    ]
    result = client.infer(
        "cifar10",
        [tensor],
        model_version="1",
        outputs=outputs,
        parameters={"activation": "log_softmax"},
        request_id="r-7",
    )
    expected = log_softmax(references[("cifar10", 1)].logits(images))
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, **TOL)
    assert result.as_numpy("logits") is None
    response = result.get_response(as_json=True) if kind == "grpc" else result.get_response()
    assert response["model_version"] == "1"
    assert response["id"] == "r-7"


def test_model_with_other_tensor_names(triton, images: np.ndarray) -> None:
    kind, client = triton
    module = _module(kind)
    tensor = module.InferInput("x", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32))
    result = client.infer("xy", [tensor])
    assert result.as_numpy("y").shape == (5, 4)


@pytest.mark.parametrize(
    ("model", "input_name", "shape", "fragment", "http_status", "grpc_status"),
    [
        (
            "nope",
            "images",
            [1, 32, 32, 3],
            "model 'nope' is not served",
            "404",
            "StatusCode.NOT_FOUND",
        ),
        (
            "cifar10",
            "pixels",
            [1, 32, 32, 3],
            "takes one input named 'images'",
            "400",
            "StatusCode.INVALID_ARGUMENT",
        ),
        (
            "cifar10",
            "images",
            [1, 16, 32, 3],
            "must have shape [N, 32, 32, 3]",
            "400",
            "StatusCode.INVALID_ARGUMENT",
        ),
        (
            "cifar10",
            "images",
            [65, 32, 32, 3],
            "limit is 64",
            "413",
            "StatusCode.RESOURCE_EXHAUSTED",
        ),
    ],
)
def test_errors_reach_the_client(
    triton,
    model: str,
    input_name: str,
    shape: list[int],
    fragment: str,
    http_status: str,
    grpc_status: str,
) -> None:
    kind, client = triton
    module = _module(kind)
    tensor = module.InferInput(input_name, shape, "FP32")
    tensor.set_data_from_numpy(np.zeros(shape, np.float32))
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, [tensor])
    assert fragment in caught.value.message()
    assert caught.value.status() == (http_status if kind == "http" else grpc_status)
