"""What a batcher reports, and to whom: the service's metrics and its per-version statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

__all__ = ["BatchObserver", "Observers", "RunTimes"]


class RunTimes(NamedTuple):
    """Where a model run's time went, in seconds (the three phases of Triton's statistics)."""

    prepare: float
    """Converting the batch's pixels to the model's input tensor."""
    infer: float
    """onnxruntime's run."""
    finish: float
    """Activations and top-k."""

    @property
    def total(self) -> float:
        return self.prepare + self.infer + self.finish


class BatchObserver(Protocol):
    """Where the batcher reports what it does."""

    def queue_depth(self, waiting: int) -> None:
        """Requests now waiting."""

    def rejected(self) -> None:
        """A request was refused: the queue was full."""

    def dispatched(self, waits: Sequence[float], rows: int, lone: bool) -> None:
        """A batch left the queue: each request's wait (s), the batch's rows, and whether it
        ran lone (in the serving process, without the hop to a model process)."""

    def finished(self, waits: Sequence[float], rows: int, times: RunTimes | None) -> None:
        """A batch's run ended: ``times`` of the run, or ``None`` when it failed."""


class Observers:
    """Several observers as one."""

    def __init__(self, *observers: BatchObserver) -> None:
        self._observers = observers

    def queue_depth(self, waiting: int) -> None:
        for observer in self._observers:
            observer.queue_depth(waiting)

    def rejected(self) -> None:
        for observer in self._observers:
            observer.rejected()

    def dispatched(self, waits: Sequence[float], rows: int, lone: bool) -> None:
        for observer in self._observers:
            observer.dispatched(waits, rows, lone)

    def finished(self, waits: Sequence[float], rows: int, times: RunTimes | None) -> None:
        for observer in self._observers:
            observer.finished(waits, rows, times)
