"""The Open Inference Protocol over HTTP (the in-process service): its conventions (empty health bodies,
``{"error": "<message>"}``), the binary tensor data extension, and its error paths."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import numpy as np
import pytest
from httpx import Client

from service.dataplane import DataPlane
from tests.service.onnx_models import LinearModel

HEADER = "Inference-Header-Content-Length"


def binary_request(pixels: np.ndarray, **extra: object) -> tuple[bytes, dict[str, str]]:
    header = {
        "inputs": [
            {
                "name": "images",
                "shape": list(pixels.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": pixels.nbytes},
            }
        ],
        **extra,
    }
    encoded = json.dumps(header).encode()
    return encoded + pixels.tobytes(), {
        HEADER: str(len(encoded)),
        "content-type": "application/octet-stream",
    }


def split(response) -> tuple[dict[str, Any], bytes]:
    length = int(response.headers[HEADER])
    return json.loads(response.content[:length]), response.content[length:]


def test_health_answers_by_status_with_empty_body(client: Client, plane: DataPlane) -> None:
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/cifar10/ready",
        "/v2/models/cifar10/versions/1/ready",
    ):
        response = client.get(path)
        assert (response.status_code, response.content) == (200, b""), path
    plane.set_ready(False)
    try:
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200
    finally:
        plane.set_ready(True)


def test_server_and_model_metadata(client: Client) -> None:
    assert client.get("/v2").json() == {
        "name": "cifar10-inference-service",
        "version": version("cifar10-inference-service"),
        "extensions": ["binary_tensor_data", "model_repository", "statistics"],
    }
    meta = client.get("/v2/models/cifar10/versions/1").json()
    assert meta == {
        "name": "cifar10",
        "versions": ["1", "2"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 32, 32, 3]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        ],
    }


def test_json_infer(
    client: Client, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    body = {
        "id": "a1",
        "inputs": [
            {
                "name": "images",
                "shape": list(images.shape),
                "datatype": "UINT8",
                "data": images.ravel().tolist(),
            }
        ],
    }
    response = client.post("/v2/models/cifar10/infer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    got = response.json()
    assert (got["model_name"], got["model_version"], got["id"]) == ("cifar10", "2", "a1")
    logits = next(o for o in got["outputs"] if o["name"] == "logits")
    assert logits["shape"] == [5, 10]
    np.testing.assert_allclose(
        np.reshape(logits["data"], (5, 10)),
        references[("cifar10", 2)].logits(images),
        rtol=1e-5,
        atol=1e-5,
    )


def test_binary_infer_round_trip(
    client: Client, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    pixels = images.astype(np.float32)
    content, headers = binary_request(
        pixels, outputs=[{"name": "logits", "parameters": {"binary_data": True}}]
    )
    response = client.post("/v2/models/cifar10/versions/1/infer", content=content, headers=headers)
    assert response.status_code == 200, response.text
    header, raw = split(response)
    (output,) = header["outputs"]
    assert output["parameters"]["binary_data_size"] == len(raw) == 5 * 10 * 4
    logits = np.frombuffer(raw, dtype="<f4").reshape(output["shape"])
    np.testing.assert_allclose(
        logits, references[("cifar10", 1)].logits(images), rtol=1e-5, atol=1e-5
    )


def test_binary_output_by_request_parameter(client: Client, images: np.ndarray) -> None:
    content, headers = binary_request(
        images.astype(np.float32), parameters={"binary_data_output": True}
    )
    header, raw = split(client.post("/v2/models/cifar10/infer", content=content, headers=headers))
    assert [o["name"] for o in header["outputs"]] == ["logits", "probabilities"]
    assert len(raw) == sum(o["parameters"]["binary_data_size"] for o in header["outputs"])


MALFORMED = [
    (b'{"inputs": [', {}, 400, "not valid JSON"),
    (b'{"inputs": 3}', {}, 422, "inputs"),
    (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "shape": [1, 32, 32, 3],
                        "datatype": "FP32",
                        "data": [1, 2],
                    }
                ]
            }
        ).encode(),
        {},
        400,
        "2 values for shape [1, 32, 32, 3]",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "shape": [1, 32, 32, 3],
                        "datatype": "STRING",
                        "data": [1],
                    }
                ]
            }
        ).encode(),
        {},
        400,
        "datatype 'STRING' is not supported",
    ),
    (
        json.dumps(
            {"inputs": [{"name": "images", "shape": [1, 32, 32, 3], "datatype": "FP32"}]}
        ).encode(),
        {},
        400,
        "needs data or parameters.binary_data_size",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "shape": [1, 32, 32, 3],
                        "datatype": "FP32",
                        "data": [0] * 3072,
                    }
                ],
                "outputs": [{"name": "scores"}],
            }
        ).encode(),
        {},
        400,
        "unknown output 'scores'",
    ),
    (
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "shape": [1, 32, 32, 3],
                        "datatype": "FP32",
                        "data": [0] * 3072,
                    }
                ],
                "parameters": {"activation": "relu"},
            }
        ).encode(),
        {},
        400,
        "parameter activation must be one of",
    ),
    (
        b'{"inputs": []}xx',
        {HEADER: "99"},
        400,
        "Inference-Header-Content-Length must be the byte length",
    ),
    (b'{"inputs": []}xx', {HEADER: "14"}, 400, "2 bytes of binary data belong to no input"),
]
"""Malformed infer requests, each a kind of its own (docs/security.md counts them)."""


@pytest.mark.parametrize(("body", "headers", "status", "fragment"), MALFORMED)
def test_infer_errors_use_the_protocol_body(
    client: Client, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = client.post(
        "/v2/models/cifar10/infer",
        content=body,
        headers={"content-type": "application/json", **headers},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str)
    assert fragment in error


def test_not_found_uses_the_protocol_body(client: Client) -> None:
    for path in ("/v2/models/nope", "/v2/models/cifar10/versions/9/ready"):
        response = client.get(path)
        assert response.status_code == 404
        assert isinstance(response.json()["error"], str)
