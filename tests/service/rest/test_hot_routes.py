"""The hot routes' lane: which requests it takes past FastAPI's router, that they never enter
FastAPI's own stack at all while every other request does, and that what it answers is what the
router would (metrics named by the route template, errors mapped alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from service.dataplane import DataPlane
from service.rest import create_app
from service.rest.hot_routes import HotRoutes
from tests.service.helpers import MAX_BODY, InProcessService

TAKEN = ["/predict", "/v2/models/m/infer", "/v2/models/m/versions/2/infer"]
PASSED_ON = [
    ("GET", "/predict"),
    ("POST", "/v2/models//infer"),
    ("POST", "/v2/models/m/ready"),
    ("POST", "/v2/models/m/versions//infer"),
    ("POST", "/v2/models/m/versions/2/infer/more"),
    ("POST", "/v2/repository/models/m/load"),
    ("POST", "/loss"),
]


def call(method: str, path: str) -> tuple[list[str], list[Message]]:
    """One request through the lane with an inner app that records what reaches it."""
    reached: list[str] = []
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b"",
             "root_path": "", "scheme": "http", "server": ("t", 80)}  # fmt: skip
    asyncio.run(HotRoutes(inner)(scope, receive, send))
    return reached, sent


@pytest.mark.parametrize(("method", "path"), PASSED_ON)
def test_other_requests_go_through_fastapi(method: str, path: str) -> None:
    reached, sent = call(method, path)
    assert reached == [path]
    assert sent[0]["status"] == 204


@pytest.mark.parametrize("path", TAKEN)
def test_the_hot_routes_never_reach_the_router(path: str) -> None:
    reached, sent = call("POST", path)
    assert reached == []
    assert sent[0]["type"] == "http.response.start"  # answered by the lane itself


def test_the_app_enters_fastapi_only_for_requests_off_the_hot_routes(
    plane: DataPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    fastapi_call = FastAPI.__call__

    async def recording(self: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            entered.append(f"{scope['method']} {scope['path']}")
        await fastapi_call(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", recording)
    app = create_app(plane, plane.telemetry, max_request_bytes=MAX_BODY)
    with TestClient(app) as client:
        hot = client.post("/v2/models/cifar10/infer", content=b"not JSON")
        assert hot.status_code == 400, hot.text  # answered by the lane, with the one mapping
        assert "not valid JSON" in hot.json()["error"]
        assert client.post("/predict", json={}).status_code == 400
        assert client.get("/predict").status_code == 405
        assert client.get("/nope").status_code == 404
    assert entered == ["GET /predict", "GET /nope"]


@pytest.fixture(scope="module")
def service(repository_path: Path) -> Iterator[InProcessService]:
    running = InProcessService(repository_path).start()
    yield running
    running.stop()


def requests_counted(service: InProcessService, endpoint: str, status: str) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "service_requests_total"
        and sample.labels.get("endpoint") == endpoint
        and sample.labels.get("status") == status
    )


def test_metrics_name_the_hot_routes_by_their_templates(service: InProcessService) -> None:
    body = {"inputs": [{"name": "images", "shape": [1, 32, 32, 3], "datatype": "UINT8",
                        "data": [0] * 3072}]}  # fmt: skip
    template = "/v2/models/{name}/versions/{version}/infer"
    before = requests_counted(service, template, "200")
    answer = httpx.post(f"{service.url}/v2/models/cifar10/versions/2/infer", json=body)
    assert answer.status_code == 200
    assert requests_counted(service, template, "200") == before + 1
    before_400 = requests_counted(service, "/predict", "400")
    refused = httpx.post(f"{service.url}/predict", json={"instances": [[1, 2], [3]]})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_argument"
    assert requests_counted(service, "/predict", "400") == before_400 + 1
