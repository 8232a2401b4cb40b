"""RequestDeadline answers 504 only for its own timeout: a TimeoutError the app raises itself is
the app's failure (500), not a request timeout."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.rest.middleware import RequestDeadline


async def slow(request: Request) -> Response:
    await asyncio.sleep(5)
    return Response("late")


async def own_timeout(request: Request) -> Response:
    raise TimeoutError("the app's own")


APP = Starlette(routes=[Route("/slow", slow), Route("/own", own_timeout)])


@pytest.mark.parametrize(("timeout", "path", "status"), [(0.2, "/slow", 504), (0.0, "/own", 500), (5.0, "/own", 500)])  # fmt: skip
def test_only_the_request_timeout_is_a_504(timeout: float, path: str, status: int) -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(
            app=RequestDeadline(APP, timeout), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    assert asyncio.run(call()).status_code == status
