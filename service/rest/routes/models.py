"""``GET /models`` and per-model metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.dataplane import DataPlane
from service.repository import ServedModel, TensorSpec
from service.rest.encoding import JSONResponse
from service.rest.openapi import responses
from service.rest.schemas import ModelDescription, ModelList

__all__ = ["describe", "router"]

router = APIRouter(tags=["models"])


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def describe(plane: DataPlane, model: ServedModel) -> dict[str, Any]:
    """Everything a caller needs to use ``model``."""
    return {
        "name": model.name,
        "version": str(model.version),
        "versions": [str(v) for v in plane.repository.versions(model.name)],
        "inputs": [_tensor(model.input)],
        "outputs": [_tensor(model.output)],
        "input_layout": model.layout,
        "image_shape": list(model.image_shape),
        "classes": list(model.class_names),
        "dataset": model.metadata.get("dataset", "unknown"),
        "device": model.provider,
        "batching": model.batching.model_dump(),
        "metadata": model.metadata,
        "calibration": model.calibration.model_dump() if model.calibration else None,
    }


@router.get("/models", response_model=ModelList, summary="Served models and their versions")
async def list_models(request: Request) -> Response:
    plane: DataPlane = request.app.state.dataplane
    models = [
        {
            "name": m.name,
            "versions": [str(v) for v in m.versions],
            "latest": str(m.latest),
            "labels": {label: str(v) for label, v in m.labels.items()},
            "states": [
                {
                    "version": str(s.version),
                    "state": s.state,
                    "reason": s.reason,
                    "calibration_temperature": s.calibration_temperature,
                }
                for s in m.states
            ],
        }
        for m in plane.models.served()
    ]
    return JSONResponse({"models": models})


@router.get(
    "/models/{name}",
    response_model=ModelDescription,
    responses=responses(404),
    summary="Metadata of a model's latest version",
)
async def model_metadata(name: str, request: Request) -> Response:
    plane: DataPlane = request.app.state.dataplane
    return JSONResponse(describe(plane, plane.model(name)))


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelDescription,
    responses=responses(400, 404),
    summary="Metadata of one model version",
)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    plane: DataPlane = request.app.state.dataplane
    return JSONResponse(describe(plane, plane.model(name, version)))
