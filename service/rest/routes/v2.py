"""The Open Inference Protocol (KServe V2) over HTTP: health, metadata and inference."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service import oip
from service.dataplane import DataPlane
from service.errors import UnavailableError
from service.rest.encoding import JSONResponse
from service.rest.v2_codec import HEADER_LENGTH, decode_infer_request, encode_infer_response

__all__ = ["EXTENSIONS", "router"]

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])
EXTENSIONS = ["binary_tensor_data"]


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


@router.get("", summary="Server metadata")
async def server_metadata() -> Response:
    return JSONResponse(oip.server_metadata(EXTENSIONS))


@router.get("/health/live", summary="200 while live (empty body)")
async def live() -> Response:
    return Response(status_code=200)


@router.get("/health/ready", summary="200 when ready, else 503 (empty body)")
async def ready(request: Request) -> Response:
    return Response(status_code=200 if _plane(request).ready() else 503)


@router.get("/models/{name}", summary="Model metadata (latest version)")
@router.get("/models/{name}/versions/{version}", summary="Model metadata")
async def metadata(request: Request, name: str, version: str | None = None) -> Response:
    return JSONResponse(oip.model_metadata(_plane(request), name, version))


@router.get("/models/{name}/ready", summary="200 when the model is ready")
@router.get("/models/{name}/versions/{version}/ready", summary="200 when the version is ready")
async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    if not oip.model_ready(_plane(request), name, version):
        raise UnavailableError("not ready")
    return Response(status_code=200)


@router.post("/models/{name}/infer", summary="Inference (JSON or binary tensor data)")
@router.post("/models/{name}/versions/{version}/infer", summary="Inference on a version")
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    plane = _plane(request)
    body = await request.body()
    header = request.headers.get(HEADER_LENGTH)
    parsed = await plane.offload(len(body), decode_infer_request, body, header, name, version)
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
