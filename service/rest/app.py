"""The FastAPI application of the project's REST API, behind the service's own front."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service import __version__
from service.dataplane import DataPlane
from service.rest.deadline import RequestDeadline
from service.rest.errors import install_error_handlers
from service.rest.hot_routes import HotRoutes
from service.rest.middleware import BodySizeLimit, RequestMetrics
from service.rest.openapi import install_openapi
from service.rest.routes import calibrate, health, loss, models, predict, v2, v2_repository
from service.rest.security import secured
from service.rest.turns import RestTurns
from service.security import Security
from service.telemetry import Telemetry

__all__ = ["ServiceApp", "create_app"]


class ServiceApp(FastAPI):
    """FastAPI, entered through the service's front: its middleware, then the hot routes'
    lane (:mod:`service.rest.hot_routes`), then FastAPI's own handling for every other request.

    The front sits outside FastAPI rather than in its middleware stack so that the hot routes
    also skip what FastAPI and Starlette wrap around every request (their error and telemetry
    layers, the application's dispatch): about 8% of a one-image JSON inference's event-loop
    time. Errors in the hot routes are mapped by the one mapping FastAPI's handlers use."""

    front: ASGIApp
    """The outermost layer; set by :func:`create_app`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # as Starlette sets it: routes find the data plane through it
        await self.front(scope, receive, send)

    async def routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling: its middleware stack, exception handlers and router."""
        await super().__call__(scope, receive, send)


def create_app(
    plane: DataPlane,
    telemetry: Telemetry,
    *,
    max_request_bytes: int,
    request_timeout: float = 0.0,
    rest_turns: tuple[int, int] = (128, 1024),
    security: Security | None = None,
) -> ServiceApp:
    """A FastAPI app serving ``plane``; routes only decode, delegate and encode.

    ``request_timeout`` (seconds, 0 = none) bounds each request; a client that disconnects
    cancels its request either way. ``rest_turns`` is (slots, backlog) of
    :class:`~service.rest.turns.RestTurns`."""
    app = ServiceApp(
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
    slots, backlog = rest_turns
    # Built from the inside out; from the outside in: metrics see every response, refusals of
    # access control and CORS included; access control and CORS come before the body limit;
    # turns are inside the deadline, so a request waiting for one is timed (and cancelled if
    # its client goes away); the hot routes' lane is innermost.
    front: ASGIApp = HotRoutes(app.routed)
    front = RestTurns(front, slots=slots, backlog=backlog, waiting=telemetry.rest_waiting)
    front = RequestDeadline(front, timeout=request_timeout)
    front = BodySizeLimit(front, max_bytes=max_request_bytes)
    front = secured(front, security)
    app.front = RequestMetrics(front, telemetry=telemetry)
    return app
