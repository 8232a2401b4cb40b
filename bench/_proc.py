"""Memory of a running service, read from Linux's /proc: the resident set of a process and
every process below it (the serving process, its model processes, workers)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

__all__ = ["RssSampler", "descendants", "tree_rss_bytes"]

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:  # the process ended meanwhile
        pass
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first."""
    tree, index = [pid], 0
    while index < len(tree):
        tree += _children(tree[index])
        index += 1
    return tree


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes."""
    return sum(_rss(p) for p in descendants(pid))


class RssSampler:
    """Samples :func:`tree_rss_bytes` every ``interval`` seconds on a thread while entered;
    :attr:`samples` holds ``(time.monotonic(), bytes)`` pairs."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), tree_rss_bytes(self.pid)))
            self._stop.wait(self.interval)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        """The largest sample taken between ``start`` and ``end`` (monotonic seconds)."""
        return max((b for t, b in self.samples if start <= t <= end), default=0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
