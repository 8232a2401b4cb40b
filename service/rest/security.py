"""Access control and CORS for the REST API, installed only when configured.

:class:`ApiKeyAuth` is a pure ASGI middleware: a request to a path that is not open
(``service.security.credentials``) without a key in force gets 401 with ``WWW-Authenticate:
Bearer`` and the standard error body, before its body is read or it is routed. It sits
inside the request metrics, so refusals are counted (status 401; endpoint ``unmatched``, as
they never reach routing), and inside CORS, so that browsers' preflight requests (which carry
no credentials) are answered and refusals carry CORS headers.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import UnauthenticatedError
from service.rest.errors import service_error_response
from service.security import ApiKeys, Security
from service.security.credentials import (
    API_KEY_HEADER,
    AUTHORIZATION_HEADER,
    is_open_http_path,
    presented_key,
)

__all__ = ["CORS_ALLOWED_HEADERS", "CORS_EXPOSED_HEADERS", "ApiKeyAuth", "secured"]

CORS_ALLOWED_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "Inference-Header-Content-Length",
)
CORS_EXPOSED_HEADERS = ("Inference-Header-Content-Length", "Retry-After")

_AUTHORIZATION = AUTHORIZATION_HEADER.encode()
_API_KEY = API_KEY_HEADER.encode()


class ApiKeyAuth:
    """Refuse requests without a key in force (see the module's docstring)."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_http_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = api_key = None
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                authorization = value
            elif name == _API_KEY:
                api_key = value
        if self.keys.verify(presented_key(authorization, api_key)):
            await self.app(scope, receive, send)
            return
        response = service_error_response(UnauthenticatedError(), scope["path"])
        await response(scope, receive, send)


def secured(app: ASGIApp, security: Security) -> ASGIApp:
    """``app`` behind access control (when there are keys) and CORS (when there are origins).
    Wrap what they must run outside of (the body limit); the request metrics go around them."""
    if security.keys is not None:
        app = ApiKeyAuth(app, keys=security.keys)
    if security.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(security.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_ALLOWED_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
        )
    return app
