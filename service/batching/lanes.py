"""Fair admission to one model's queue: the requests of each transport form a *lane*.

One flooding transport must not take another's turn: when several lanes are active, each is
guaranteed an equal share of the queue, and a lane may borrow what the others leave unused
only while enough stays free for them to reach their share. A lane counts as active while it
has requests queued or sent one within :data:`ACTIVE_SECONDS`; alone, a lane may fill the
whole queue. Counts are in requests, like the queue's limit.
"""

from __future__ import annotations

import time
from collections import Counter

__all__ = ["ACTIVE_SECONDS", "DEFAULT_LANE", "GRPC_LANE", "REST_LANE", "LaneShares"]

DEFAULT_LANE = "default"
"""The lane of a request that names none (work the service starts itself, direct callers)."""
REST_LANE = "rest"
"""Requests that came in over REST (the project's API and the Open Inference Protocol's)."""
GRPC_LANE = "grpc"
"""Requests that came in over gRPC (both services)."""

ACTIVE_SECONDS = 1.0
"""How long after its last request a lane keeps its reserved share: long enough to span the
gaps of a client that retries after a refusal, short enough that an idle transport does not
hold room for nobody."""


class LaneShares:
    """Which lane may queue one more request in a queue of ``capacity`` requests."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: Counter[str] = Counter()
        self._last_seen: dict[str, float] = {}

    @property
    def waiting(self) -> int:
        """Requests queued, over every lane."""
        return self._waiting.total()

    def of(self, lane: str) -> int:
        """Requests of ``lane`` queued."""
        return self._waiting[lane]

    def room_for(self, lane: str, now: float | None = None) -> bool:
        """Whether ``lane`` may queue one more request now (and note that it asked)."""
        now = time.monotonic() if now is None else now
        self._last_seen[lane] = now
        total = self._waiting.total()
        if total >= self.capacity:
            return False
        others = [
            other
            for other, seen in self._last_seen.items()
            if other != lane and (self._waiting[other] or now - seen < ACTIVE_SECONDS)
        ]
        if not others:
            return True
        share = max(1, self.capacity // (len(others) + 1))
        if self._waiting[lane] < share:
            return True
        reserved = sum(max(0, share - self._waiting[other]) for other in others)
        return total + reserved < self.capacity

    def add(self, lane: str) -> None:
        """A request of ``lane`` joined the queue."""
        self._waiting[lane] += 1

    def remove(self, lane: str) -> None:
        """A request of ``lane`` left the queue (taken into a batch, cancelled, expired)."""
        self._waiting[lane] -= 1
        if self._waiting[lane] <= 0:
            del self._waiting[lane]
