"""The FastAPI application of the project's REST API."""

from __future__ import annotations

from fastapi import FastAPI

from service import __version__
from service.dataplane import DataPlane
from service.rest.deadline import RequestDeadline
from service.rest.errors import install_error_handlers
from service.rest.hot_routes import HotRoutes
from service.rest.middleware import BodySizeLimit, RequestMetrics
from service.rest.openapi import install_openapi
from service.rest.routes import calibrate, health, loss, models, predict, v2, v2_repository
from service.rest.security import install_security
from service.rest.turns import RestTurns
from service.security import Security
from service.telemetry import Telemetry

__all__ = ["create_app"]


def create_app(
    plane: DataPlane,
    telemetry: Telemetry,
    *,
    max_request_bytes: int,
    request_timeout: float = 0.0,
    rest_turns: tuple[int, int] = (128, 1024),
    security: Security | None = None,
) -> FastAPI:
    """A FastAPI app serving ``plane``; routes only decode, delegate and encode.

    ``request_timeout`` (seconds, 0 = none) bounds each request; a client that disconnects
    cancels its request either way. ``rest_turns`` is (slots, backlog) of
    :class:`~service.rest.turns.RestTurns`."""
    app = FastAPI(
        title="CIFAR-10 inference-and-loss service",
        summary="Logits, server-side softmax/sigmoid, and Keras-exact losses over ONNX models.",
        version=__version__,
    )
    app.state.dataplane = plane
    app.state.telemetry = telemetry
    for module in (predict, loss, calibrate, models, health, v2_repository, v2):
        app.include_router(module.router)
    install_error_handlers(app)
    security = security or Security()
    install_openapi(
        app, plane.repository, plane.max_request_rows, access_control=security.keys is not None
    )
    # Innermost: the hot inference routes skip FastAPI's router (service.rest.hot_routes).
    app.add_middleware(HotRoutes)
    # Added last, so outermost: metrics see every response, including 413s of the limit.
    # Turns inside the deadline: a request waiting for one is timed (and cancelled if its
    # client goes away).
    slots, backlog = rest_turns
    app.add_middleware(RestTurns, slots=slots, backlog=backlog, waiting=telemetry.rest_waiting)
    app.add_middleware(RequestDeadline, timeout=request_timeout)
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    # Access control, then CORS, outside the limit and inside the metrics (refusals counted).
    install_security(app, security)
    app.add_middleware(RequestMetrics, telemetry=telemetry)
    return app
