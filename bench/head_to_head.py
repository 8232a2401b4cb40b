"""Head to head: the service and every peer up at once, each point measured in rounds.

This VM's speed drifts by up to ±30% within minutes, and a peer measured after the service
(minutes later) can catch a faster or a slower spell than the service did; the ratio between
them then measures the drift as much as the servers. So the servers compared run side by side
(an idle one costs the others nothing: each waits on its sockets), and at each number in flight
every server runs each of its paths once per round, the paths of one transport one after the
other, in an order that rotates from round to round so that no server is always first or last.
A point's row is its median round (by req/s); its errors are those of every round.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from bench._points import Route, Row, drive
from bench.loadgen import LoadResult
from bench.peer import Peer

__all__ = ["Contender", "head_to_head", "median_row", "rotated"]

T = TypeVar("T")


@dataclass(frozen=True)
class Contender:
    """A running server and the paths it is measured on."""

    server: Peer
    routes: Sequence[Route]


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """``items`` started at the ``turn``-th (cyclically): round ``turn``'s order."""
    if not items:
        return []
    start = turn % len(items)
    return [*items[start:], *items[:start]]


def median_row(runs: Sequence[Row]) -> Row:
    """One point's rounds as one row: the median round (by req/s; the lower middle one of an
    even number), its errors summed over every round, and every round's req/s."""
    ordered = sorted(runs, key=lambda row: row.result.rps)
    middle = ordered[(len(ordered) - 1) // 2]
    failed = sum(row.result.failed for row in runs)
    errors = sum(row.result.transport_errors for row in runs)
    result: LoadResult = replace(middle.result, failed=failed, transport_errors=errors)
    return replace(middle, result=result, rounds=tuple(row.result.rps for row in runs))


def head_to_head(
    contenders: Sequence[Contender], levels: Sequence[int], rounds: int, seconds: float
) -> list[Row]:
    """Every contender's paths at each number in flight in ``levels``, in ``rounds`` rounds (see
    the module docstring); one row per server, path and number in flight."""
    points: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for concurrency in levels:
        for grpc in (True, False):
            jobs = [(c, r) for c in contenders for r in c.routes if r.grpc == grpc]
            for turn in range(rounds):
                for contender, route in rotated(jobs, turn):
                    server = contender.server
                    row = drive(
                        server.name, (server.grpc_port, server.http_port), route, concurrency,
                        seconds, server.grpc_errors, server.settings,
                    )  # fmt: skip
                    points[(server.name, route.name, concurrency)].append(row)
    return [median_row(runs) for runs in points.values()]
