"""``POST /loss``: a Keras loss over a labelled batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.dataplane import DataPlane
from service.rest.encoding import JSONResponse, read_json
from service.rest.inputs import image_batch
from service.rest.schemas import LossBody, LossResponse
from service.types import LossOutcome, LossRequest

__all__ = ["router"]

router = APIRouter(tags=["losses"])
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LossBody.model_json_schema()}},
    }
}


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
        body["model"] = {"name": outcome.model.name, "version": str(outcome.model.version)}
    if outcome.metrics is not None:
        body["metrics"] = outcome.metrics
    return body


def _evaluate(plane: DataPlane, payload: Any) -> dict[str, Any]:
    body = LossBody.model_validate(payload)
    images = None
    if body.instances is not None or body.images is not None:
        model = plane.model(body.model, body.version)
        images = image_batch(plane, model, body.instances, body.images)
    request = LossRequest(
        loss=body.loss,
        labels=body.labels,
        logits=body.logits,
        probabilities=body.probabilities,
        images=images,
        model=body.model,
        version=body.version,
        reduction=body.reduction,
        sample_weight=body.sample_weight,
        options=body.options(),
        return_gradient=body.return_gradient,
    )
    return encode_loss(plane.loss(request))


@router.post(
    "/loss",
    response_model=LossResponse,
    openapi_extra=_OPENAPI,
    summary="Evaluate a loss (and, when the model runs, accuracy and calibration)",
)
async def loss(request: Request) -> Response:
    """Labels plus exactly one of ``logits``, ``probabilities``, ``instances``, ``images``."""
    payload = await read_json(request)
    plane: DataPlane = request.app.state.dataplane
    return JSONResponse(await run_in_threadpool(_evaluate, plane, payload))
