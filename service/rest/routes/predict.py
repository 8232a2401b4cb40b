"""``POST /predict``: JSON (pixels or base64 images) or multipart file uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from service.codecs import decode_images
from service.dataplane import DataPlane
from service.errors import InvalidInputError
from service.rest.encoding import JSONResponse, read_json
from service.rest.inputs import image_batch
from service.rest.schemas import PredictBody, PredictForm, PredictResponse
from service.types import Prediction, PredictOptions

__all__ = ["router"]

router = APIRouter(tags=["inference"])

_MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
        **PredictForm.model_json_schema()["properties"],
    },
    "required": ["file"],
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictBody.model_json_schema()},
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
        },
    }
}


def encode_prediction(prediction: Prediction) -> dict[str, Any]:
    """The response body of a prediction."""
    body: dict[str, Any] = {
        "model": {"name": prediction.model.name, "version": str(prediction.model.version)},
        "activation": prediction.activation,
        "logits": prediction.logits,
    }
    if prediction.activation in ("softmax", "sigmoid"):
        body["probabilities"] = prediction.scores
    elif prediction.activation == "log_softmax":
        body["log_probabilities"] = prediction.scores
    if prediction.top_k is not None:
        body["top_k"] = [[vars(top) for top in row] for row in prediction.top_k]
    return body


def _predict(plane: DataPlane, options: PredictForm, batch_source: Any) -> dict[str, Any]:
    model = plane.model(options.model, options.version)
    batch = batch_source(model)
    prediction = plane.predict(
        batch,
        model=model.name,
        version=model.version,
        options=PredictOptions(options.activation, options.temperature, options.top_k),
    )
    return encode_prediction(prediction)


async def _multipart(request: Request, plane: DataPlane) -> tuple[PredictForm, list[bytes]]:
    fields: dict[str, str] = {}
    files: list[bytes] = []
    async with request.form(max_files=plane.max_batch_size, max_fields=16) as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append(await value.read())
            else:
                fields[key] = value
    if not files:
        raise InvalidInputError("a multipart request needs at least one image file", field="file")
    return PredictForm.model_validate(fields), files


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=_OPENAPI,
    summary="Logits, activation and top-k classes for a batch of images",
)
async def predict(request: Request) -> Response:
    """Send pixels (``instances``) or base64 PNG/JPEG ``images`` as JSON, or upload files as
    multipart form data (``curl -F file=@cat.png``)."""
    plane: DataPlane = request.app.state.dataplane
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        options, files = await _multipart(request, plane)

        def from_files(model: Any) -> Any:
            plane.check_batch(len(files), "file")
            return decode_images(files, model.image_shape, "file")

        body = await run_in_threadpool(_predict, plane, options, from_files)
        return JSONResponse(body)
    payload = await read_json(request)

    def from_json() -> dict[str, Any]:
        parsed = PredictBody.model_validate(payload)
        return _predict(
            plane, parsed, lambda model: image_batch(plane, model, parsed.instances, parsed.images)
        )

    return JSONResponse(await run_in_threadpool(from_json))
