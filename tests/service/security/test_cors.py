"""CORS: off by default; with origins configured, preflights answered for them only, and
access control still applies to the requests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.helpers import InProcessService
from tests.service.security.keys import KEY_A

APP = "https://app.example"
OTHER = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture(scope="module")
def cors(repository_path: Path) -> Iterator[InProcessService]:
    service = InProcessService(
        repository_path, cors_origins=f"{APP},http://localhost:3000", api_keys=KEY_A
    ).start()
    yield service
    service.stop()


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    answer = client.get("/health/live", headers={"Origin": APP})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = client.options("/predict", headers={"Origin": APP, **PREFLIGHT})
    assert "access-control-allow-origin" not in preflight.headers


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
    cors: InProcessService,
) -> None:
    answer = httpx.options(f"{cors.url}/predict", headers={"Origin": APP, **PREFLIGHT})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    assert {"GET", "POST"} <= set(
        answer.headers["access-control-allow-methods"].replace(" ", "").split(",")
    )
    allowed = answer.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "x-api-key", "content-type", "inference-header-content-length"):
        assert header in allowed


def test_an_allowed_origin_is_echoed_and_may_read_the_protocol_headers(
    cors: InProcessService,
) -> None:
    answer = httpx.get(
        f"{cors.url}/models", headers={"Origin": APP, "Authorization": f"Bearer {KEY_A}"}
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "inference-header-content-length" in exposed
    assert "retry-after" in exposed
    refused = httpx.get(f"{cors.url}/models", headers={"Origin": APP})
    assert refused.status_code == 401  # the page can read why
    assert refused.headers["access-control-allow-origin"] == APP


def test_another_origin_is_not_allowed(cors: InProcessService) -> None:
    preflight = httpx.options(f"{cors.url}/predict", headers={"Origin": OTHER, **PREFLIGHT})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = httpx.get(f"{cors.url}/health/ready", headers={"Origin": OTHER})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
