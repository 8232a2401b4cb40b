"""The Open Inference Protocol (KServe V2) over HTTP: health, metadata and inference."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service import oip
from service.dataplane import DataPlane
from service.errors import UnavailableError
from service.rest.encoding import JSONResponse
from service.rest.openapi import REF, body, ok, responses
from service.rest.v2_codec import HEADER_LENGTH, decode_infer_request, encode_infer_response

__all__ = ["EXTENSIONS", "router"]

router = APIRouter(
    prefix="/v2", tags=["open inference protocol (v2)"], default_response_class=Response
)
EXTENSIONS = ["binary_tensor_data", *oip.repository.EXTENSIONS]

_INFER_OK: dict[int | str, Any] = {
    200: {
        "description": "JSON, or (with binary outputs) the JSON header followed by raw tensors",
        "content": {
            "application/json": {"schema": {"$ref": REF.format(model="V2InferResponse")}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {
            HEADER_LENGTH: {
                "description": "Length of the JSON header when binary tensors follow it.",
                "schema": {"type": "integer"},
            }
        },
    }
}


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


@router.get("", responses=ok("V2ServerMetadata"), summary="Server metadata")
async def server_metadata() -> Response:
    return JSONResponse(oip.server_metadata(EXTENSIONS))


@router.get("/health/live", responses=ok(None), summary="200 while live (empty body)")
async def live() -> Response:
    return Response(status_code=200)


@router.get(
    "/health/ready",
    responses={**ok(None), 503: {"description": "Not ready (empty body)"}},
    summary="200 when ready, else 503 (empty body)",
)
async def ready(request: Request) -> Response:
    return Response(status_code=200 if _plane(request).ready() else 503)


_METADATA = {**ok("V2ModelMetadata"), **responses(400, 404, v2=True)}


@router.get("/models/{name}", responses=_METADATA, summary="Model metadata (latest version)")
async def metadata(request: Request, name: str) -> Response:
    return JSONResponse(oip.model_metadata(_plane(request), name, None))


@router.get("/models/{name}/versions/{version}", responses=_METADATA, summary="Model metadata")
async def version_metadata(request: Request, name: str, version: str) -> Response:
    return JSONResponse(oip.model_metadata(_plane(request), name, version))


_READY = {**ok(None), **responses(400, 404, 503, v2=True)}


def _ready_response(request: Request, name: str, version: str | None) -> Response:
    if not oip.model_ready(_plane(request), name, version):
        raise UnavailableError("not ready")
    return Response(status_code=200)


@router.get("/models/{name}/ready", responses=_READY, summary="200 when the model is ready")
async def model_ready(request: Request, name: str) -> Response:
    return _ready_response(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    responses=_READY,
    summary="200 when the version is ready",
)
async def version_ready(request: Request, name: str, version: str) -> Response:
    return _ready_response(request, name, version)


_INFER = {**_INFER_OK, **responses(400, 404, 413, 422, 500, 503, 504, v2=True)}


@router.post(
    "/models/{name}/infer",
    responses=_INFER,
    openapi_extra=body("V2InferRequest"),
    summary="Inference (JSON or binary tensor data)",
)
async def infer(request: Request, name: str) -> Response:
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    responses=_INFER,
    openapi_extra=body("V2InferRequest"),
    summary="Inference on a version",
)
async def version_infer(request: Request, name: str, version: str) -> Response:
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    plane = _plane(request)
    raw = await request.body()
    plane.check_room(plane.model(name, version))  # before decoding: refusing must be cheap
    header = request.headers.get(HEADER_LENGTH)
    parsed = await plane.offload(len(raw), decode_infer_request, raw, header, name, version)
    response = await oip.infer(plane, parsed)
    binary_default = bool(parsed.parameters.get("binary_data_output", False))
    content, header_length = await plane.offload(
        response.nbytes, encode_infer_response, response, binary_default
    )
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(header_length)},
    )
