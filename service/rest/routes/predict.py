"""``POST /predict``: JSON (pixels or base64 images) or multipart file uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from service.dataplane import DataPlane, Prediction
from service.errors import InvalidInputError
from service.rest.decoding import decode_predict, decode_uploads
from service.rest.encoding import JSONResponse, model_ref
from service.rest.openapi import body, responses
from service.rest.schemas import PredictForm, PredictResponse

__all__ = ["router"]

router = APIRouter(tags=["inference"])


def encode_prediction(prediction: Prediction) -> dict[str, Any]:
    """The response body of a prediction."""
    model, options = prediction.model, prediction.options
    body: dict[str, Any] = {
        "model": model_ref(model),
        "activation": options.activation,
        "logits": prediction.logits,
        "calibrated": prediction.calibrated,
        "temperature": prediction.temperature,
    }
    if options.activation.scores_name is not None:
        body[options.activation.scores_name] = prediction.scores
    if prediction.top_k is not None:
        body["top_k"] = [[vars(top) for top in row] for row in prediction.top_k]
    return body


async def _multipart(request: Request, plane: DataPlane) -> tuple[PredictForm, list[bytes]]:
    fields: dict[str, str] = {}
    files: list[bytes] = []
    async with request.form(max_files=plane.max_request_rows, max_fields=16) as form:
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
    openapi_extra=body("PredictRequest", "PredictUpload"),
    responses=responses(400, 404, 413, 422, 500, 503, 504),
    summary="Logits, activation and top-k classes for a batch of images",
)
async def predict(request: Request) -> Response:
    """Send pixels (``instances``) or base64 PNG/JPEG ``images`` as JSON, or upload files as
    multipart form data (``curl -F file=@cat.png``)."""
    plane: DataPlane = request.app.state.dataplane
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form, files = await _multipart(request, plane)
        model = plane.model(form.model, form.version)
        plane.check_room(model)
        size = sum(map(len, files))
        images = await plane.offload(size, decode_uploads, files, model, plane)
        prediction = await plane.predict(model, images, form.options(), field="file")
    else:
        body = await request.body()
        sole = plane.sole_model()
        if sole is not None:
            plane.check_room(sole)  # before decoding: refusing must be cheap
        call = await plane.offload(len(body), decode_predict, body, plane)
        prediction = await plane.predict(call.model, call.images, call.options, field=call.field)
    return JSONResponse(encode_prediction(prediction))
