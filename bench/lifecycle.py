"""Benchmark: models that change while the service runs — memory over load/unload cycles, the
latency of a model that does not change while another loads, and a version roll under load.

``.venv/bin/python -m bench.lifecycle`` copies the model ``models/`` serves (else a synthetic
one of the quickstart model's size) into a scratch repository as ``steady`` and ``cycled``,
starts ``python -m service`` on it as its own process, and measures, in one run:

1. **Memory:** ``--cycles`` unload/load cycles of ``cycled`` (explicit control, a request
   each cycle); the resident memory of every process of the service after each cycle, the
   last against the first.
2. **Latency during loads:** ``--clients`` gRPC callers (one request in flight each) on
   ``steady`` for ``--seconds``, once with nothing else happening (steady state), then while
   ``cycled`` is unloaded and loaded again and again: p50/p99 of each phase and their ratio.
3. **A roll under load:** in poll mode, 16 REST + 16 gRPC callers on one model while version 2
   is exported into the repository and then rolled back to version 1: requests, failures.

Output: a Markdown table on stdout and in ``<out>/lifecycle.md``, the numbers in
``<out>/lifecycle.json``, RSS per cycle and the latency distributions in ``<out>/lifecycle.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._models import copy_model, model_repository
from bench._proc import tree_rss_bytes
from bench._stats import environment, markdown_table, mb, percentile_ms, rounded
from bench._traffic import Traffic
from service.launcher import running_service

__all__ = ["LifecycleReport", "main"]


@dataclass
class LifecycleReport:
    """What one run measured (memory in MB, latency in ms)."""

    model: str
    cycles: int
    rss_mb: list[float] = field(default_factory=list)
    steady_p50_ms: float | None = None
    steady_p99_ms: float | None = None
    loading_p50_ms: float | None = None
    loading_p99_ms: float | None = None
    loads_during: int = 0
    roll_requests: int = 0
    roll_failures: int = 0
    roll_versions: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rss_ratio(self) -> float:
        return self.rss_mb[-1] / self.rss_mb[0] if self.rss_mb else 0.0

    @property
    def p99_ratio(self) -> float | None:
        if self.steady_p99_ms and self.loading_p99_ms:
            return self.loading_p99_ms / self.steady_p99_ms
        return None


def _memory(report: LifecycleReport, root: Path, source: Path, name: str) -> None:
    body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [8, 32, 32, 3],
                        "data": [7] * (8 * 3072)}]}  # fmt: skip
    flags = ["--model-control-mode", "explicit", "--model-processes", "2"]
    with (
        running_service(root, *flags) as service,
        httpx.Client(base_url=service.url, timeout=120) as http,
    ):
        for _ in range(report.cycles):
            http.post("/v2/models/cycled/infer", json=body).raise_for_status()
            http.post("/v2/repository/models/cycled/unload").raise_for_status()
            http.post("/v2/repository/models/cycled/load").raise_for_status()
            report.rss_mb.append(mb(tree_rss_bytes(service.process.pid)))
        _latency(report, service.http_port, service.grpc_port, http)


def _latency(
    report: LifecycleReport, http_port: int, grpc_port: int, http: httpx.Client, seconds: float = 8
) -> None:
    with Traffic(http_port, grpc_port, "steady", rest=0, grpc=4) as steady:
        time.sleep(seconds)
    steady_tally = steady.stop()
    stop = threading.Event()

    def cycle() -> None:
        while not stop.is_set():
            http.post("/v2/repository/models/cycled/unload").raise_for_status()
            http.post("/v2/repository/models/cycled/load").raise_for_status()
            report.loads_during += 1

    cycler = threading.Thread(target=cycle, daemon=True)
    with Traffic(http_port, grpc_port, "steady", rest=0, grpc=4) as loading:
        cycler.start()
        time.sleep(seconds)
        stop.set()
        cycler.join(60)
    loading_tally = loading.stop()
    report.latencies = {"steady": steady_tally.latencies, "loading": loading_tally.latencies}
    report.steady_p50_ms = rounded(percentile_ms(steady_tally.latencies, 50))
    report.steady_p99_ms = rounded(percentile_ms(steady_tally.latencies, 99))
    report.loading_p50_ms = rounded(percentile_ms(loading_tally.latencies, 50))
    report.loading_p99_ms = rounded(percentile_ms(loading_tally.latencies, 99))


def _roll(report: LifecycleReport, source: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-roll-") as scratch:
        root = Path(scratch)
        copy_model(source, name, root, "m", 1)
        with running_service(root, "--poll-interval-seconds", "0.2") as service:
            with Traffic(service.http_port, service.grpc_port, "m") as traffic:
                time.sleep(2)
                staging = root / "m" / ".staging"
                staging.mkdir()
                shutil.copy(root / "m" / "1" / "model.onnx", staging / "model.onnx")
                staging.rename(root / "m" / "2")
                _until(service.url, {"2": "READY"})
                time.sleep(2)
                (root / "m" / "config.json").write_text('{"version_policy": {"specific": [1]}}')
                _until(service.url, {"1": "READY"})
                time.sleep(2)
            tally = traffic.stop()
    report.roll_requests = sum(tally.versions.values()) + len(tally.failures)
    report.roll_failures = len(tally.failures)
    report.roll_versions = dict(tally.versions)


def _until(url: str, states: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        index = httpx.post(f"{url}/v2/repository/index", timeout=30).json()
        if {e["version"]: e["state"] for e in index} == states:
            return
        time.sleep(0.1)
    raise SystemExit(f"the repository did not reach {states} within {timeout:.0f} s")


def table(report: LifecycleReport) -> str:
    """The report as a Markdown table."""
    p99 = report.p99_ratio
    return markdown_table([
        ("model", report.model),
        (f"RSS after cycle 1 → {report.cycles} (MB, all processes)",
         f"{report.rss_mb[0]} → {report.rss_mb[-1]} ({report.rss_ratio:.3f}×, max "
         f"{max(report.rss_mb)})"),
        ("steady p50 / p99 (ms, 4 gRPC callers)", f"{report.steady_p50_ms} / "
         f"{report.steady_p99_ms}"),
        (f"during {report.loads_during} unload+load of another model: p50 / p99 (ms)",
         f"{report.loading_p50_ms} / {report.loading_p99_ms}"),
        ("p99 during loads ÷ steady p99", None if p99 is None else round(p99, 2)),
        ("roll v1 → v2 → v1 under 32 in flight: requests (by version)",
         f"{report.roll_requests} ({report.roll_versions})"),
        ("failed requests in the roll", report.roll_failures),
    ])  # fmt: skip


def plot(report: LifecycleReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    figure, (memory, latency) = plt.subplots(1, 2, figsize=(11, 4))
    memory.plot(range(1, len(report.rss_mb) + 1), report.rss_mb, marker=".")
    memory.set(xlabel="unload/load cycle", ylabel="RSS of all processes (MB)",
               title="Memory over load/unload cycles")  # fmt: skip
    memory.set_ylim(0, max(report.rss_mb) * 1.2)
    for name, values in report.latencies.items():
        ordered = sorted(v * 1e3 for v in values)
        shares = [i / len(ordered) for i in range(1, len(ordered) + 1)]
        latency.plot(ordered, shares, label=name)
    latency.set(xscale="log", xlabel="latency (ms)", ylabel="share of requests",
                title="Unchanged model: steady vs during loads")  # fmt: skip
    latency.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    latency.xaxis.set_major_formatter(ScalarFormatter())
    latency.xaxis.set_minor_formatter(NullFormatter())  # 2×10⁰, 3×10⁰ … overlapped
    latency.legend()
    figure.suptitle(environment(), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=None)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-lifecycle"))
    args = parser.parse_args(argv)
    with model_repository(args.model_repository) as (source, name):
        report = LifecycleReport(model=name, cycles=args.cycles)
        with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as scratch:
            root = Path(scratch)
            copy_model(source, name, root, "steady")
            copy_model(source, name, root, "cycled")
            _memory(report, root, source, name)
        _roll(report, source, name)
    args.out.mkdir(parents=True, exist_ok=True)
    text = f"{environment()}\n\n{table(report)}\n"
    print(text)
    (args.out / "lifecycle.md").write_text(text)
    data: dict[str, Any] = {k: v for k, v in asdict(report).items() if k != "latencies"}
    (args.out / "lifecycle.json").write_text(json.dumps(data, indent=2))
    plot(report, args.out / "lifecycle.png")
    print(f"wrote {args.out}/lifecycle.md, lifecycle.json, lifecycle.png")
    return 0 if report.roll_failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
