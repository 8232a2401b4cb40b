"""Type names shared by the gRPC modules."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Context = Any

__all__ = ["Context", "deadline_of"]


def deadline_of(context: Context) -> float | None:
    """The call's deadline on ``time.monotonic()``'s clock (``None``: the client set none), so
    that a call still queued for the model when it passes is dropped, never run."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
