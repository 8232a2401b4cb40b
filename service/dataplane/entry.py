"""Which transport a request came in on: its *lane* in the models' queues.

Each transport marks its requests once (the REST middleware, gRPC's RPC wrapper); the data
plane reads the mark when a request joins a model's queue, where each active lane keeps a
fair share (:mod:`service.batching.lanes`), so that one transport's flood cannot shut the
other out.
"""

from __future__ import annotations

from contextvars import ContextVar

from service.batching.lanes import DEFAULT_LANE, GRPC_LANE, REST_LANE

__all__ = ["GRPC_LANE", "REST_LANE", "current_lane", "enter_lane"]

_LANE: ContextVar[str] = ContextVar("lane", default=DEFAULT_LANE)


def enter_lane(lane: str) -> None:
    """Mark the running request (its task's context) as having come in on ``lane``."""
    _LANE.set(lane)


def current_lane() -> str:
    """The running request's lane (the default lane when no transport marked it)."""
    return _LANE.get()
