"""``POST /loss``: a Keras loss over a labelled batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.dataplane import DataPlane, LossOutcome
from service.rest.decoding import decode_loss
from service.rest.encoding import JSONResponse, model_ref
from service.rest.openapi import body, responses
from service.rest.schemas import LossResponse

__all__ = ["router"]

router = APIRouter(tags=["losses"])


def encode_loss(outcome: LossOutcome) -> dict[str, Any]:
    """The response body of a loss evaluation."""
    result = outcome.result
    body: dict[str, Any] = {
        "loss": result.name,
        "reduction": result.reduction,
        "value": result.value,
        "per_sample": result.per_sample,
    }
    if result.gradient is not None:
        body["gradient"] = result.gradient
    if outcome.model is not None:
        body["model"] = model_ref(outcome.model)
    if outcome.metrics is not None:
        body["metrics"] = outcome.metrics
    return body


@router.post(
    "/loss",
    response_model=LossResponse,
    openapi_extra=body("LossRequest"),
    responses=responses(400, 404, 413, 422, 500, 503, 504),
    summary="Evaluate a loss (and, when the model runs, accuracy and calibration)",
)
async def loss(request: Request) -> Response:
    """Labels plus exactly one of ``logits``, ``probabilities``, ``instances``, ``images``."""
    plane: DataPlane = request.app.state.dataplane
    body = await request.body()
    loss_request = await plane.offload(len(body), decode_loss, body, plane)
    return JSONResponse(encode_loss(await plane.loss(loss_request)))
