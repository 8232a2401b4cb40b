"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.dataplane import DataPlane
from service.errors import UnavailableError
from service.rest.encoding import JSONResponse
from service.rest.openapi import responses
from service.rest.schemas import HealthStatus
from service.telemetry import Telemetry

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/health/live", response_model=HealthStatus, summary="200 while the process runs")
async def live() -> Response:
    return JSONResponse({"status": "live"})


@router.get(
    "/health/ready",
    response_model=HealthStatus,
    responses=responses(503),
    summary="200 once models are loaded and warmed up, else 503",
)
async def ready(request: Request) -> Response:
    plane: DataPlane = request.app.state.dataplane
    if not plane.ready():
        raise UnavailableError("not ready")
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics (text exposition format 0.0.4)",
)
async def metrics(request: Request) -> Response:
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
