"""Drive a server with h2load (Debian's nghttp2-client): gRPC over HTTP/2 by replaying one
length-prefixed gRPC frame, REST over HTTP/1.1 (``--h1``). Every in-flight request is its own
connection (``-c N -m 1``), as N independent clients would be. Latency percentiles come from
h2load's per-request log."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GRPC_HEADERS", "LoadResult", "grpc_frame", "h2load", "read_log", "require"]

GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}


def require(*tools: str) -> None:
    """Fail with the install command when a load tool is missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)}: apt-get install nghttp2-client nginx (Debian)"
        )


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC message frame: flag, 4-byte big-endian length, the message."""
    return b"\0" + len(message).to_bytes(4, "big") + message


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    failed: int
    """Responses other than 2xx, plus h2load's transport errors and timeouts (and, added by
    the caller, gRPC calls the server ended with an error status)."""
    p50_ms: float
    p99_ms: float
    transport_errors: int = 0
    """Of :attr:`failed`: connection or stream errors h2load reported (no response at all)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """The HTTP statuses of the failed responses, by status."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def read_log(text: str) -> tuple[list[float], Counter[str]]:
    """The sorted latencies (ms) of the requests in an h2load log and the statuses of those
    that were not 2xx, stream errors (``-1``, which h2load also counts as errored) left out.

    The log holds the measured requests only. A request whose response headers came during
    the warm-up and whose stream closed after it is logged with status 0: h2load counts it as
    a success but never records its status (``Client::on_header`` ignores headers outside the
    main phase). It straddles the start of the measurement, so it is left out entirely.
    """
    rows = [line.split("\t")[:3] for line in text.splitlines()]
    measured = [(status, micros) for _, status, micros in rows if status != "0"]
    latencies = sorted(int(micros) / 1000 for status, micros in measured if status != "-1")
    statuses = Counter(
        status for status, _ in measured if status != "-1" and not status.startswith("2")
    )
    return latencies, statuses


def h2load(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    warm_up: float = 1.0,
    http1: bool = False,
) -> LoadResult:
    """POST ``body`` to ``url`` from ``concurrency`` connections for ``seconds`` (after
    ``warm_up`` seconds that are not counted)."""
    with tempfile.TemporaryDirectory() as scratch:
        body_file, log_file = Path(scratch) / "body", Path(scratch) / "log"
        body_file.write_bytes(body)
        command = [
            "h2load", "-c", str(concurrency), "-m", "1", "-D", f"{round(seconds * 1000)}ms",
            f"--warm-up-time={round(warm_up * 1000)}ms", "-d", str(body_file),
            f"--log-file={log_file}",
        ]  # fmt: skip
        if http1:
            command.append("--h1")
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=seconds + warm_up + 60
        )
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr or done.stdout}")
        errored = re.search(r"(\d+) errored, (\d+) timeout", done.stdout)
        if errored is None:
            raise RuntimeError(f"unexpected h2load output:\n{done.stdout}")
        latencies, statuses = read_log(log_file.read_text())
    failed = sum(statuses.values())
    transport = int(errored.group(1)) + int(errored.group(2))
    return LoadResult(
        requests=len(latencies) - failed,
        seconds=seconds,
        failed=failed + transport,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        transport_errors=transport,
        statuses=dict(statuses),
    )
