"""A lean lane for the hot inference routes: ``POST /predict`` and the Open Inference
Protocol's ``POST /v2/models/{name}[/versions/{version}]/infer``, matched by their path and
handed straight to their route functions, past FastAPI's router (its regex matching over every
route, its dependency solving and its per-route wrappers: about 0.15 ms of event loop a
request, most of what separates a FastAPI route from a bare ASGI one here).

The same functions run, with the same middleware around them (metrics, access control, CORS,
limits, deadlines, turns); errors are answered by the one mapping the app's exception handlers
use; the route is set in the scope as FastAPI sets it, so metrics name it alike. Every other
request, and these paths with any other method, go through FastAPI as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.rest.errors import response_for
from service.rest.routes import predict, v2

__all__ = ["HotRoutes"]

Endpoint = Callable[..., Awaitable[Response]]


class HotRoutes:
    """ASGI middleware: the hot routes' lane (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        routes = {getattr(r, "path", None): r for r in [*predict.router.routes, *v2.router.routes]}
        self._predict = self._route(routes, "/predict")
        self._infer = self._route(routes, "/v2/models/{name}/infer")
        self._version_infer = self._route(routes, "/v2/models/{name}/versions/{version}/infer")

    @staticmethod
    def _route(routes: dict[str | None, BaseRoute], path: str) -> BaseRoute:
        route = routes.get(path)
        if route is None:
            raise LookupError(f"the hot route {path} is not among the routers' routes")
        return route

    def _match(self, path: str) -> tuple[BaseRoute, Endpoint, dict[str, str]] | None:
        if path == "/predict":
            return self._predict, predict.predict, {}
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "v2" or parts[2] != "models" or parts[-1] != "infer":
            return None
        if len(parts) == 5 and parts[3]:
            return self._infer, v2.infer, {"name": parts[3]}
        if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
            return self._version_infer, v2.version_infer, {"name": parts[3], "version": parts[5]}
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self._match(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        route, endpoint, params = found
        scope["route"] = route
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            response = await endpoint(request, **params)
        except Exception as exc:  # answered as the app's exception handlers answer it
            response = response_for(exc, request)
        await response(scope, receive, send)
