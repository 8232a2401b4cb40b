"""One measured point of the serving benchmark: a way of asking for a prediction (a route), one
h2load run of it against a server, and the row it gives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.loadgen import LoadResult, h2load

__all__ = ["Route", "Row", "drive", "service_grpc_errors"]


@dataclass(frozen=True)
class Route:
    """One way of asking for a prediction of one image."""

    name: str
    grpc: bool
    path: str
    body: bytes
    headers: dict[str, str]
    peer: str | None
    """The peers' route compared against (``None``: they have none like it)."""


@dataclass(frozen=True)
class Row:
    """One point: a route on a server at a number of requests in flight."""

    server: str
    route: str
    batching: str
    concurrency: int
    result: LoadResult
    rounds: tuple[float, ...] = ()
    """The req/s of each round, when the point was measured in rounds (:mod:`bench.head_to_head`):
    :attr:`result` is then the median round's, its ``failed`` summed over every round."""


def drive(
    server: str,
    ports: tuple[int, int],
    route: Route,
    concurrency: int,
    seconds: float,
    grpc_errors: Callable[[], float] | None = None,
    batching: str = "-",
) -> Row:
    """One load run of ``route`` on ``server`` (its gRPC and REST ports). gRPC errors travel
    in trailers that h2load does not read, so the server's own count of them is added."""
    grpc_port, http_port = ports
    port = grpc_port if route.grpc else http_port
    before = grpc_errors() if grpc_errors and route.grpc else 0.0
    result = h2load(
        f"http://127.0.0.1:{port}{route.path}", route.body, route.headers,
        concurrency=concurrency, seconds=seconds, http1=not route.grpc,
    )  # fmt: skip
    if grpc_errors and route.grpc:
        failed = result.failed + int(grpc_errors() - before)
        result = LoadResult(**{**asdict(result), "failed": failed})
    setting = f"batching {batching}" if server == "ours" else batching
    print(f"{server} · {route.name} · {setting} · {concurrency} in flight: "
          f"{result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms", flush=True)  # fmt: skip
    return Row(server, route.name, batching, concurrency, result)


def service_grpc_errors(url: str) -> float:
    """Our gRPC calls that failed so far (from /metrics): any status but OK, and CANCELLED,
    which is what the load generator's calls still in flight when it stops end with."""
    text = httpx.get(f"{url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "service_requests_total"
        and sample.labels.get("transport") == "grpc"
        and sample.labels.get("status") not in ("OK", "CANCELLED")
    )
