"""``POST /calibrate``: a temperature fitted to a labelled batch, with the figures before and
after it; nothing is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.dataplane import CalibrationOutcome, DataPlane
from service.rest.decoding import decode_calibrate
from service.rest.encoding import JSONResponse, model_ref
from service.rest.openapi import body, responses
from service.rest.schemas import CalibrateResponse

__all__ = ["encode_calibration", "router"]

router = APIRouter(tags=["calibration"])


def encode_calibration(outcome: CalibrationOutcome) -> dict[str, Any]:
    """The response body of a calibration."""
    fit, model = outcome.fit, outcome.model
    return {
        "temperature": fit.temperature,
        "rows": fit.rows,
        "iterations": fit.iterations,
        "at_bound": fit.at_bound,
        "before": outcome.before.figures(),
        "after": outcome.after.figures(),
        "model": None if model is None else model_ref(model),
    }


@router.post(
    "/calibrate",
    response_model=CalibrateResponse,
    openapi_extra=body("CalibrateRequest"),
    responses=responses(400, 404, 413, 422, 500, 503, 504),
    summary="Fit temperature scaling to a labelled batch (stores nothing)",
)
async def calibrate(request: Request) -> Response:
    """Class-id labels plus exactly one of ``logits``, ``probabilities``, ``instances``,
    ``images``: the temperature minimising their NLL, and NLL, ECE, Brier score, accuracy and
    mean confidence before and after it, on the same rows."""
    plane: DataPlane = request.app.state.dataplane
    payload = await request.body()
    calibrate_request = await plane.offload(len(payload), decode_calibrate, payload, plane)
    return JSONResponse(encode_calibration(await plane.calibrate(calibrate_request)))
