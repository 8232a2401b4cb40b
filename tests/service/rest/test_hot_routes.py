"""The hot routes' lane: which requests it takes past FastAPI's router, and that what it
answers is what the router would (metrics named by the route template, errors mapped alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from service.rest.hot_routes import HotRoutes
from tests.service.helpers import InProcessService

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
