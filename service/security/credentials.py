"""How clients present an API key, and what needs none: defined once for both transports.

REST: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. gRPC: the same two names as call
metadata (gRPC metadata keys are lower case). Open without a key: the probes' endpoints
(health, readiness, metrics) and the API documentation over REST; the health service and the
Open Inference Protocol's ``ServerLive``/``ServerReady`` over gRPC (Kubernetes' gRPC probes
cannot send metadata). Everything else, model readiness and metadata included, needs a key.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "API_KEY_HEADER",
    "AUTHORIZATION_HEADER",
    "OPEN_GRPC_METHODS",
    "OPEN_GRPC_SERVICES",
    "OPEN_HTTP_PATHS",
    "is_open_grpc_method",
    "is_open_http_path",
    "presented_key",
    "presented_key_in_metadata",
]

AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"
_BEARER = b"bearer"

OPEN_HTTP_PATHS = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)
"""REST paths served without a key (exact paths: anything else, a trailing slash included,
needs one)."""

OPEN_GRPC_SERVICES = frozenset({"grpc.health.v1.Health"})
"""gRPC services whose every method is open."""

OPEN_GRPC_METHODS = frozenset(
    {
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
    }
)
"""Further open gRPC methods, by their full name."""


def is_open_http_path(path: str) -> bool:
    """Whether a REST request to ``path`` is served without a key."""
    return path in OPEN_HTTP_PATHS


def is_open_grpc_method(method: str) -> bool:
    """Whether the gRPC method ``/package.Service/Method`` is served without a key."""
    return method in OPEN_GRPC_METHODS or method[1:].rpartition("/")[0] in OPEN_GRPC_SERVICES


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "replace")


def presented_key(authorization: str | bytes | None, api_key: str | bytes | None) -> bytes | None:
    """The key a request presents: a bearer token of ``Authorization``, else ``X-API-Key``."""
    if authorization is not None:
        scheme, _, token = _as_bytes(authorization).strip().partition(b" ")
        if scheme.lower() == _BEARER and token.strip():
            return token.strip()
    if api_key is not None and api_key.strip():
        return _as_bytes(api_key).strip()
    return None


def presented_key_in_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> bytes | None:
    """The key a gRPC call's metadata presents (same rules as :func:`presented_key`)."""
    authorization = api_key = None
    for name, value in metadata or ():
        if name == AUTHORIZATION_HEADER:
            authorization = value
        elif name == API_KEY_HEADER:
            api_key = value
    return presented_key(authorization, api_key)
