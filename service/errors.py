"""Domain errors, defined once for every transport.

Each transport maps these classes to its own status codes in exactly one place
(``service/rest/errors.py`` for HTTP, the gRPC interceptor for gRPC status codes). Anything
that is not a :class:`ServiceError` is an internal fault and reaches clients only as a
generic message.
"""

from __future__ import annotations

__all__ = [
    "DeadlineExceededError",
    "InferenceFailedError",
    "InvalidInputError",
    "ModelControlError",
    "ModelLoadError",
    "NotFoundError",
    "OverloadedError",
    "RequestTooLargeError",
    "ServiceError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_code",
]


class ServiceError(Exception):
    """Base class of every error the service reports to its callers on purpose."""

    code = "internal"
    """Stable machine-readable name of the error kind (part of the REST error body)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        """Name of the request field at fault, when one is."""


class InvalidInputError(ServiceError):
    """The caller sent something malformed: wrong shape, range, type or an unknown name."""

    code = "invalid_argument"


class NotFoundError(ServiceError):
    """The named model or version does not exist."""

    code = "not_found"


class RequestTooLargeError(ServiceError):
    """The request is larger than the configured limits allow (body size or batch size)."""

    code = "resource_exhausted"


class UnavailableError(ServiceError):
    """The service is not ready to serve (still starting, or shutting down)."""

    code = "unavailable"


class UnauthenticatedError(ServiceError):
    """The request carries no API key, or one that is not in force. The message is the same
    for both on purpose, and never repeats what was presented."""

    code = "unauthenticated"
    challenge = "Bearer"
    """The HTTP ``WWW-Authenticate`` challenge: how to present a key."""

    def __init__(self) -> None:
        super().__init__("missing or invalid credentials")


class OverloadedError(ServiceError):
    """A model's queue is full: the request is refused at once rather than queued; retry later."""

    code = "overloaded"
    retry_after_seconds = 1
    """What the caller is told to wait before retrying (HTTP ``Retry-After``)."""


class DeadlineExceededError(ServiceError):
    """The request's deadline passed while it waited for the model; it never ran."""

    code = "deadline_exceeded"


class InferenceFailedError(ServiceError):
    """The model run a request was batched into failed. The message is generic on purpose: the
    cause is logged once per batch, never sent to callers."""

    code = "internal"

    def __init__(self) -> None:
        super().__init__("inference failed")


class ModelControlError(ServiceError):
    """A model-repository request (load, unload) cannot be carried out: the control mode does
    not allow it, or the model could not be loaded (the message says why; what served before
    still serves)."""

    code = "failed_precondition"


def error_from_code(code: str, message: str, field: str | None = None) -> ServiceError:
    """The error whose :attr:`~ServiceError.code` is ``code``, carrying ``message``: how an
    error met in another process is raised again in this one (an unknown code is internal)."""
    kinds = [ServiceError]
    for kind in kinds:
        if kind.code == code and kind.__init__ is ServiceError.__init__:
            return kind(message, field=field)
        kinds.extend(kind.__subclasses__())
    return ServiceError(message, field=field)


class ModelLoadError(Exception):
    """A model in the repository cannot be served; raised at start-up, before any port binds."""
