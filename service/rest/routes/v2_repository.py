"""Triton's model-repository and statistics extensions over HTTP (``service.oip.repository``).

Registered before the protocol's ``/v2/models/{name}`` routes, so that ``/v2/models/stats`` is
the statistics of every model rather than the metadata of a model named ``stats``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.dataplane import DataPlane
from service.oip import repository
from service.rest.encoding import JSONResponse
from service.rest.openapi import REF, responses
from service.rest.schemas import IndexEntryBody, ModelControlBody, RepositoryIndexBody

__all__ = ["router"]

router = APIRouter(
    prefix="/v2", tags=["open inference protocol (v2)"], default_response_class=Response
)


def _optional_body(schema: str) -> dict[str, Any]:
    """The request body is optional (tritonclient sends an empty one)."""
    content = {"application/json": {"schema": {"$ref": REF.format(model=schema)}}}
    return {"requestBody": {"required": False, "content": content}}


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


@router.post(
    "/repository/index",
    response_model=list[IndexEntryBody],
    responses=responses(422, v2=True),
    openapi_extra=_optional_body("RepositoryIndexBody"),
    summary="The models in the repository and each version's state",
)
async def index(request: Request) -> Response:
    body = RepositoryIndexBody.model_validate_json(await request.body() or b"{}")
    return JSONResponse(await repository.repository_index(_plane(request), ready_only=body.ready))


Order = Callable[[DataPlane, str, Mapping[str, Any]], Awaitable[None]]
_CONTROL: dict[int | str, dict[str, Any]] = {
    200: {"description": "Done (empty body)"},
    **responses(400, 404, 422, 503, v2=True),
}


def _control_route(action: str, summary: str, order: Order) -> None:
    """``POST /v2/repository/models/{name}/<action>``: the body's parameters, then ``order``."""

    async def route(request: Request, name: str) -> Response:
        body = ModelControlBody.model_validate_json(await request.body() or b"{}")
        await order(_plane(request), name, body.parameters)
        return Response(status_code=200)

    router.add_api_route(
        f"/repository/models/{{name}}/{action}", route, methods=["POST"], responses=_CONTROL,
        openapi_extra=_optional_body("ModelControlBody"), summary=summary, name=action,
    )  # fmt: skip


_control_route(
    "load",
    "Load or reload a model from the repository (answers once it serves)",
    repository.load,
)
_control_route(
    "unload",
    "Unload a model once its requests are answered (explicit control mode)",
    repository.unload,
)


_STATS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Triton's ModelStatisticsResponse as JSON"}
}


@router.get("/models/stats", responses=_STATS, summary="Statistics of every loaded version")
async def all_statistics(request: Request) -> Response:
    return JSONResponse(repository.statistics(_plane(request)))


@router.get(
    "/models/{name}/stats",
    responses={**_STATS, **responses(404, v2=True)},
    summary="Statistics of a model's loaded versions",
)
async def model_statistics(request: Request, name: str) -> Response:
    return JSONResponse(repository.statistics(_plane(request), name))


@router.get(
    "/models/{name}/versions/{version}/stats",
    responses={**_STATS, **responses(400, 404, v2=True)},
    summary="Statistics of one version (a number or a label)",
)
async def version_statistics(request: Request, name: str, version: str) -> Response:
    return JSONResponse(repository.statistics(_plane(request), name, version))
