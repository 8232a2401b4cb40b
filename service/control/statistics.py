"""Per-version inference statistics, as Triton's statistics extension reports them.

Counts and cumulative durations since the version was loaded, fed by its batcher: requests
(``inference_count`` counts rows, each image of a batched request once, as Triton counts
inferences), model runs, the time requests queued, and the three phases of each run — per
request and per batch size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.batching import RunTimes

__all__ = ["VersionStatistics"]


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, count: int, seconds: float) -> None:
        self.count += count
        self.ns += _ns(seconds)

    def report(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class _Phases:
    prepare: _Duration = field(default_factory=_Duration)
    infer: _Duration = field(default_factory=_Duration)
    finish: _Duration = field(default_factory=_Duration)

    def add(self, count: int, times: RunTimes) -> None:
        self.prepare.add(count, count * times.prepare)
        self.infer.add(count, count * times.infer)
        self.finish.add(count, count * times.finish)


class VersionStatistics:
    """One model version's statistics (a :class:`~service.batching.BatchObserver`)."""

    def __init__(self, name: str, version: int) -> None:
        self.name, self.version = name, version
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self._success = _Duration()
        self._fail = _Duration()
        self._queue = _Duration()
        self._phases = _Phases()
        self._batches: dict[int, _Phases] = {}

    def queue_depth(self, waiting: int) -> None:
        pass

    def rejected(self) -> None:
        self._fail.add(1, 0.0)

    def dispatched(self, waits: Sequence[float], rows: int, lone: bool) -> None:
        pass

    def finished(self, waits: Sequence[float], rows: int, times: RunTimes | None) -> None:
        self.last_inference_ms = time.time_ns() // 1_000_000
        self._queue.add(len(waits), sum(waits))
        if times is None:
            self._fail.add(len(waits), sum(waits))
            return
        self.inference_count += rows
        self.execution_count += 1
        self._success.add(len(waits), sum(waits) + len(waits) * times.total)
        self._phases.add(len(waits), times)
        self._batches.setdefault(rows, _Phases()).add(1, times)

    def report(self) -> dict[str, Any]:
        """Triton's ``ModelStatistics`` as JSON (durations in ns)."""
        phases = self._phases
        return {
            "name": self.name,
            "version": str(self.version),
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self._success.report(),
                "fail": self._fail.report(),
                "queue": self._queue.report(),
                "compute_input": phases.prepare.report(),
                "compute_infer": phases.infer.report(),
                "compute_output": phases.finish.report(),
                "cache_hit": _Duration().report(),
                "cache_miss": _Duration().report(),
            },
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": batch.prepare.report(),
                    "compute_infer": batch.infer.report(),
                    "compute_output": batch.finish.report(),
                }
                for size, batch in sorted(self._batches.items())
            ],
            "memory_usage": [],
        }
