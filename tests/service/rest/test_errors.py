"""Every REST error path: the right status, one error body shape, a message naming the field,
and never a 500 for malformed input."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.dataplane import DataPlane
from service.rest import create_app
from tests.service.helpers import MAX_BODY, MAX_ROWS, b64, encode

PIXELS = np.zeros((1, 32, 32, 3)).tolist()


def png(size: tuple[int, int] = (32, 32), channels: int = 3) -> str:
    """A blank base64 PNG (4 channels: RGBA)."""
    return b64(encode(np.zeros((size[1], size[0], channels), np.uint8)))


def assert_error(response: Any, status: int, code: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    for fragment in fragments:
        assert fragment in body["error"]["message"], body["error"]["message"]


PREDICT_CASES = [
    (
        "no input",
        {"model": "cifar10"},
        400,
        "invalid_argument",
        "exactly one of instances or images",
    ),
    (
        "both inputs",
        {"model": "cifar10", "instances": PIXELS, "images": [png()]},
        400,
        "invalid_argument",
        "exactly one",
    ),
    (
        "wrong shape",
        {"model": "cifar10", "instances": [[1, 2, 3]]},
        400,
        "invalid_argument",
        "instances must have shape [N, 32, 32, 3]",
    ),
    (
        "ragged",
        {"model": "cifar10", "instances": [[[1]], [1, 2]]},
        400,
        "invalid_argument",
        "instances must be a rectangular array",
    ),
    (
        "ragged with an empty row (numbers fewer than the shape)",
        {"model": "cifar10", "instances": [[], [1]]},
        400,
        "invalid_argument",
        "instances must be a rectangular array",
    ),
    (
        "pixel range",
        {"model": "cifar10", "instances": (np.ones((1, 32, 32, 3)) * 300).tolist()},
        400,
        "invalid_argument",
        "within [0, 255]",
    ),
    (
        "strings as pixels",
        {"model": "cifar10", "instances": [["a"]]},
        400,
        "invalid_argument",
        "instances",
    ),
    (
        "empty images",
        {"model": "cifar10", "images": []},
        400,
        "invalid_argument",
        "at least one image",
    ),
    (
        "bad base64",
        {"model": "cifar10", "images": ["***"]},
        400,
        "invalid_argument",
        "images[0] is not valid base64",
    ),
    (
        "not an image",
        {"model": "cifar10", "images": [base64.b64encode(b"hello").decode()]},
        400,
        "invalid_argument",
        "images[0]: expected a 32x32 RGB PNG or JPEG",
    ),
    (
        "wrong size",
        {"model": "cifar10", "images": [png((64, 64))]},
        400,
        "invalid_argument",
        "images[0]: expected a 32x32 RGB PNG or JPEG, got 64x64",
    ),
    (
        "wrong mode",
        {"model": "cifar10", "images": [png(channels=4)]},
        400,
        "invalid_argument",
        "got mode RGBA",
    ),
    (
        "unknown model",
        {"model": "resnet", "instances": PIXELS},
        404,
        "not_found",
        "model 'resnet' is not served",
    ),
    (
        "unknown version",
        {"model": "cifar10", "version": 9, "instances": PIXELS},
        404,
        "not_found",
        "no version 9",
    ),
    ("no model named", {"instances": PIXELS}, 400, "invalid_argument", "model is required"),
    (
        "bad activation",
        {"model": "cifar10", "instances": PIXELS, "activation": "relu"},
        422,
        "invalid_request",
        "activation:",
    ),
    (
        "bad temperature",
        {"model": "cifar10", "instances": PIXELS, "temperature": 0},
        422,
        "invalid_request",
        "temperature:",
    ),
    (
        "negative top_k",
        {"model": "cifar10", "instances": PIXELS, "top_k": -1},
        422,
        "invalid_request",
        "top_k:",
    ),
    (
        "top_k too big",
        {"model": "cifar10", "instances": PIXELS, "top_k": 11},
        400,
        "invalid_argument",
        "top_k must be between 0 and 10",
    ),
    (
        "unknown field",
        {"model": "cifar10", "instances": PIXELS, "topk": 3},
        422,
        "invalid_request",
        "topk: Extra inputs are not permitted",
    ),
    (
        "batch too large",
        {"model": "cifar10", "images": [png()] * (MAX_ROWS + 1)},
        413,
        "resource_exhausted",
        f"limit is {MAX_ROWS}",
    ),
    ("not an object", [1, 2, 3], 422, "invalid_request", "body"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "fragment"), PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES]
)
def test_predict_errors(
    client: Client, case: str, body: Any, status: int, code: str, fragment: str
) -> None:
    assert_error(client.post("/predict", json=body), status, code, fragment)


LOSS = {
    "loss": "sparse_categorical_crossentropy",
    "labels": [0, 1],
    "logits": [[1.0, 0.0], [0.0, 1.0]],
}
LOSS_CASES = [
    (
        "unknown loss",
        {"loss": "kld"},
        400,
        "invalid_argument",
        "unknown loss 'kld'; expected one of",
    ),
    (
        "no predictions",
        {"logits": None},
        400,
        "invalid_argument",
        "exactly one of logits, probabilities, instances or images",
    ),
    (
        "two inputs",
        {"probabilities": [[0.5, 0.5], [0.5, 0.5]]},
        400,
        "invalid_argument",
        "exactly one of",
    ),
    (
        "label out of range",
        {"labels": [0, 2]},
        400,
        "invalid_argument",
        "class-id labels must lie in [0, 2), got 2",
    ),
    ("label rows", {"labels": [0]}, 400, "invalid_argument", "one row per prediction (2), got 1"),
    (
        "nan logits",
        {"logits": [[1.0, "NaN"], [0.0, 1.0]]},
        400,
        "invalid_argument",
        "logits must be numeric",
    ),
    (
        "negative weight",
        {"sample_weight": [1.0, -2.0]},
        400,
        "invalid_argument",
        "sample_weight must be >= 0",
    ),
    ("unknown reduction", {"reduction": "avg"}, 400, "invalid_argument", "unknown reduction 'avg'"),
    (
        "option for another loss",
        {"gamma": 2.0},
        400,
        "invalid_argument",
        "does not take option 'gamma'",
    ),
    ("flag not bool", {"return_gradient": "yes"}, 422, "invalid_request", "return_gradient:"),
    ("labels not a list", {"labels": 3}, 422, "invalid_request", "labels:"),
    ("missing loss", {"loss": None}, 422, "invalid_request", "loss:"),
    (
        "image loss without model",
        {"logits": None, "instances": PIXELS * 2},
        400,
        "invalid_argument",
        "model is required",
    ),
    (
        "too many rows",
        {"labels": [0] * (MAX_ROWS + 1), "logits": [[1.0, 0.0]] * (MAX_ROWS + 1)},
        413,
        "resource_exhausted",
        "limit",
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "status", "code", "fragment"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES]
)
def test_loss_errors(
    client: Client, case: str, changes: dict[str, Any], status: int, code: str, fragment: str
) -> None:
    body = {**LOSS, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    assert_error(client.post("/loss", json=body), status, code, fragment)


def test_malformed_json(client: Client) -> None:
    response = client.post(
        "/predict", content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_argument", "request body is not valid JSON")


def test_body_limit_by_content_length(client: Client) -> None:
    response = client.post(
        "/loss", content=b" " * (MAX_BODY + 1), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "resource_exhausted", f"limit of {MAX_BODY} bytes")


def test_body_limit_when_streamed_without_length(client: Client) -> None:
    def chunks() -> Any:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "resource_exhausted", "exceeds the limit")


def test_multipart_without_files(client: Client) -> None:
    response = client.post("/predict", data={"model": "cifar10"}, files=[])
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("invalid_argument", "invalid_request")


def test_multipart_bad_option(client: Client) -> None:
    response = client.post(
        "/predict",
        files=[("file", ("a.png", base64.b64decode(png()), "image/png"))],
        data={"model": "cifar10", "top_k": "many"},
    )
    assert_error(response, 422, "invalid_request", "top_k:")


def test_unknown_route_and_method(client: Client) -> None:
    assert_error(client.get("/nope"), 404, "not_found", "Not Found")
    assert_error(client.get("/predict"), 405, "method_not_allowed", "Method Not Allowed")
    assert_error(client.get("/models/nope"), 404, "not_found", "model 'nope' is not served")


def test_unknown_exception_is_a_generic_500(
    plane: DataPlane, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(plane, plane.telemetry, max_request_bytes=MAX_BODY)

    async def explode() -> None:
        raise RuntimeError("secret path /etc/shadow")

    app.add_api_route("/test-only-explode", explode)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/test-only-explode")
    assert_error(response, 500, "internal", "internal server error")
    assert "secret" not in response.text
    assert "secret path" in caplog.text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(["/predict", "/loss"]),
    field_values=st.dictionaries(
        st.sampled_from(
            [
                "instances",
                "images",
                "model",
                "version",
                "activation",
                "temperature",
                "top_k",
                "loss",
                "labels",
                "logits",
                "probabilities",
                "reduction",
                "sample_weight",
                "gamma",
                "alpha",
                "ignore_class",
                "label_smoothing",
            ]
        ),
        json_values,
        max_size=5,
    ),
)
def test_no_malformed_request_gets_a_500(
    client: Client, endpoint: str, field_values: dict[str, Any]
) -> None:
    response = client.post(
        endpoint, content=json.dumps(field_values), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}
