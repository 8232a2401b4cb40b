"""Domain errors, defined once for every transport.

Each transport maps these classes to its own status codes in exactly one place
(HTTP status for REST, ``grpc.StatusCode`` for gRPC). Anything that is not a
:class:`ServiceError` is an internal fault and reaches clients only as a generic message.
"""

from __future__ import annotations

__all__ = ["InvalidInputError", "ServiceError"]


class ServiceError(Exception):
    """Base class of every error the service reports to its callers on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        """Name of the request field at fault, when one is."""


class InvalidInputError(ServiceError):
    """The caller sent something malformed: wrong shape, range, type or an unknown name."""
