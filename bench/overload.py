"""Benchmark: the service past its capacity. Far more clients than the model's queue holds
send requests back to back (REST ``/predict`` with JSON pixels and gRPC ``Classifier.Predict``,
one image each, no back-off) for a fixed time; then one client sends requests one at a time,
and the report says how soon the service was normal again.

``.venv/bin/python -m bench.overload`` starts ``python -m service`` as its own process with a
small queue (``--max-queue-size 8``, ``--max-batch-size 8``) on ``models/`` (or, when that holds
no model, a synthetic model of about the quickstart model's cost written to a scratch folder;
``--synthetic-layers N`` serves a synthetic model of N layers instead). Every answer must be
200 / OK or a refusal that says so at once (503 with ``Retry-After`` / RESOURCE_EXHAUSTED):
anything else, a timeout or a connection error counts as "other". Memory is the resident set
of the serving process and its children. Recovery is the time from the end of the overload to
the start of the first run of ``--streak`` consecutive successful requests each within the
normal latency (the larger of 2 × and +10 ms over the p99 of requests sent one at a time
before the overload). Output: a Markdown table on stdout and in ``<out>/overload.md``, the
numbers in ``<out>/overload.json``, answers per second over time in ``<out>/overload.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench._calls import OK, SHED, Call, Caller, Outcomes, PredictClients
from bench._load_plots import plot_overload
from bench._models import model_repository
from bench._proc import RssSampler, tree_rss_bytes
from bench._stats import environment, markdown_table, mb, percentile_ms
from service.launcher import RunningService, running_service
from service.lifetime import run_event_loop

__all__ = ["OverloadPlan", "OverloadReport", "main", "measure", "service_flags"]


@dataclass(frozen=True)
class OverloadPlan:
    """How hard and how long to push."""

    seconds: float = 10.0
    rest_clients: int = 64
    grpc_clients: int = 64
    baseline_requests: int = 40
    streak: int = 20
    recovery_timeout: float = 30.0
    client_timeout: float = 30.0
    bin_seconds: float = 0.5


@dataclass
class OverloadReport:
    """What one run measured (memory in MB, times in seconds)."""

    model: str
    plan: OverloadPlan
    total: Outcomes
    by_transport: dict[str, Outcomes]
    baseline_p99_ms: float
    normal_ms: float
    first_ok_s: float | None
    """From the end of the overload to the end of the first successful request after it."""
    recovery_s: float | None
    """``None``: no run of normal requests within the plan's recovery timeout."""
    recovery: Outcomes
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    server_rejected: int
    """Refusals the server counted (``service_queue_rejected_total``), all phases."""
    timeline: list[dict[str, float]] = field(default_factory=list)
    """Per bin of the overload and recovery: its start ``t`` (seconds since the overload
    began), answers per second by kind and transport (``admitted_rest_per_s``,
    ``shed_grpc_per_s``, ``other_rest_per_s``, …), and the largest RSS sample (MB)."""


def service_flags(max_queue_size: int = 8, max_batch_size: int = 8) -> tuple[str, ...]:
    """The flags of ``python -m service`` this benchmark runs it with."""
    return ("--max-queue-size", str(max_queue_size), "--max-batch-size", str(max_batch_size))


def _flood(
    transport: str,
    clients: int,
    ports: tuple[int, str],
    model: str,
    plan: OverloadPlan,
    window: tuple[float, float],
) -> list[Call]:
    """In a process of its own: ``clients`` clients of ``transport`` send back to back from
    ``window[0]`` to ``window[1]`` (``time.monotonic()``, the same clock in every process);
    every call. Each transport floods from its own process, so that neither shares a load
    generator's event loop with the other (a loop busy with one transport's answers would
    delay the other's calls on the client side and blame the service)."""

    async def flood() -> list[Call]:
        maker = PredictClients(
            ports[0], ports[1], model,
            timeout=plan.client_timeout, channels=max(1, clients // 16),
        )  # fmt: skip
        callers = [maker.rest() if transport == "rest" else maker.grpc() for _ in range(clients)]
        calls: list[Call] = []

        async def hammer(call: Caller) -> None:
            while time.monotonic() < window[1]:
                calls.append(await call())

        await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
        try:
            await asyncio.gather(*(hammer(call) for call in callers))
        finally:
            await maker.aclose()
        return calls

    return run_event_loop(flood())


async def _one_at_a_time(callers: list[Caller], requests: int) -> list[Call]:
    return [await callers[index % len(callers)]() for index in range(requests)]


async def _recover(
    callers: list[Caller], normal_ms: float, plan: OverloadPlan, since: float
) -> tuple[float | None, list[Call]]:
    """Requests one at a time until ``plan.streak`` in a row are OK and within ``normal_ms``;
    the start of that run, and every call."""
    calls: list[Call] = []
    run_start: float | None = None
    streak = 0
    while time.monotonic() - since < plan.recovery_timeout:
        call = await callers[len(calls) % len(callers)]()
        calls.append(call)
        if call.outcome == OK and call.seconds * 1e3 <= normal_ms:
            run_start = call.started if streak == 0 else run_start
            streak += 1
            if streak == plan.streak:
                return run_start, calls
        else:
            streak = 0
    return None, calls


async def _rejected(url: str, model: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    return round(sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "service_queue_rejected_total" and sample.labels.get("model") == model
    ))  # fmt: skip


def _timeline(
    calls: list[Call], samples: list[tuple[float, int]], start: float, end: float, width: float
) -> list[dict[str, float]]:
    bins = max(1, int((end - start) / width) + 1)
    counts = [Counter[str]() for _ in range(bins)]
    for call in calls:
        index = int((call.ended - start) / width)
        if 0 <= index < bins:
            kind = {OK: "admitted", SHED: "shed"}.get(call.outcome, "other")
            counts[index][f"{kind}_{call.transport}"] += 1
    peaks = [0] * bins
    for moment, size in samples:
        index = int((moment - start) / width)
        if 0 <= index < bins:
            peaks[index] = max(peaks[index], size)
    series = [f"{kind}_{t}" for kind in ("admitted", "shed", "other") for t in ("rest", "grpc")]
    return [
        {"t": round(i * width, 3), **{f"{s}_per_s": c[s] / width for s in series},
         "rss_mb": mb(peaks[i])}
        for i, c in enumerate(counts)
    ]  # fmt: skip


async def _measure(service: RunningService, model: str, plan: OverloadPlan) -> OverloadReport:
    clients = PredictClients(
        service.http_port, service.grpc_target, model,
        timeout=plan.client_timeout, channels=max(1, plan.grpc_clients // 16),
    )  # fmt: skip
    pid = service.process.pid
    light = [clients.rest(), clients.grpc()]
    floods = [(t, n) for t, n in (("rest", plan.rest_clients), ("grpc", plan.grpc_clients)) if n]
    pool = ProcessPoolExecutor(max(1, len(floods)), mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(loop.run_in_executor(pool, time.monotonic) for _ in floods))
        with RssSampler(pid) as rss:
            await _one_at_a_time(light, 4)  # connections and first-call costs
            baseline = await _one_at_a_time(light, plan.baseline_requests)
            baseline_p99 = percentile_ms((c.seconds for c in baseline), 99) or 0.0
            normal_ms = max(2 * baseline_p99, baseline_p99 + 10)
            rss_before = tree_rss_bytes(pid)
            started = time.monotonic() + 1.0  # the flooding processes are ready by then
            ended = started + plan.seconds
            ports = (service.http_port, service.grpc_target)
            flooding = {
                loop.run_in_executor(pool, _flood, transport, count, ports, model, plan,
                                     (started, ended)): count
                for transport, count in floods
            }  # fmt: skip
            await asyncio.sleep(max(0.0, ended - time.monotonic()))
            recovered, recovery = await _recover(light, normal_ms, plan, ended)
            done, pending = await asyncio.wait(flooding, timeout=plan.client_timeout + 10)
            calls = [call for future in done for call in future.result()]
            finished = time.monotonic()
            rss_after = tree_rss_bytes(pid)
        rejected = await _rejected(service.url, model)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        await clients.aclose()
    transports = {"rest": plan.rest_clients, "grpc": plan.grpc_clients}
    return OverloadReport(
        model=model,
        plan=plan,
        total=Outcomes.of(calls, sum(flooding[future] for future in pending)),
        by_transport={t: Outcomes.of([c for c in calls if c.transport == t]) for t in transports},
        baseline_p99_ms=baseline_p99,
        normal_ms=normal_ms,
        first_ok_s=next((c.ended - ended for c in recovery if c.outcome == OK), None),
        recovery_s=None if recovered is None else recovered - ended,
        recovery=Outcomes.of(recovery),
        rss_before_mb=mb(rss_before),
        rss_peak_mb=mb(max(rss.peak(started, finished), rss_before, rss_after)),
        rss_after_mb=mb(rss_after),
        server_rejected=rejected,
        timeline=_timeline([*calls, *recovery], rss.samples, started, finished, plan.bin_seconds),
    )


def measure(service: RunningService, model: str, plan: OverloadPlan) -> OverloadReport:
    """Overload ``service`` (already started, e.g. with :func:`service_flags`) as ``plan``
    says, then measure its recovery."""
    return run_event_loop(_measure(service, model, plan))


def _pair(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"{low:.1f} / {high:.1f}"


def table(report: OverloadReport) -> str:
    """The report as Markdown: one table by transport, one for recovery and memory."""
    seconds = report.plan.seconds
    lines = [
        "| clients | sent | admitted/s | admitted | shed | shed % | other | "
        "shed p50 / p99 ms | admitted p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    rows = [(f"REST × {report.plan.rest_clients}", report.by_transport["rest"]),
            (f"gRPC × {report.plan.grpc_clients}", report.by_transport["grpc"]),
            ("all", report.total)]  # fmt: skip
    for name, o in rows:
        other = ", ".join(f"{k}: {n}" for k, n in o.other.items()) or "0"
        lines.append(
            f"| {name} | {o.sent} | {o.admitted / seconds:.0f} | {o.admitted} | {o.shed} "
            f"| {o.shed_percent:.1f} | {other} | {_pair(o.shed_p50_ms, o.shed_p99_ms)} "
            f"| {_pair(o.admitted_p50_ms, o.admitted_p99_ms)} |"
        )
    recovery = ", ".join(
        f"{k}: {n}"
        for k, n in {"ok": report.recovery.admitted, "shed": report.recovery.shed,
                     **report.recovery.other}.items() if n
    )  # fmt: skip
    summary = markdown_table([
        ("unloaded p99 (1 client), ms", report.baseline_p99_ms),
        ("normal latency bound, ms", report.normal_ms),
        ("first success after the overload, s", report.first_ok_s),
        (f"recovery: {report.plan.streak} normal requests in a row after, s", report.recovery_s),
        ("requests while recovering", recovery),
        ("refusals counted by the server (all phases)", report.server_rejected),
        ("RSS before / peak / after, MB",
         f"{report.rss_before_mb} / {report.rss_peak_mb} / {report.rss_after_mb}"),
    ])  # fmt: skip
    return "\n".join(lines) + "\n\n" + summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=None,
                        help="default: models/ when it holds a model")  # fmt: skip
    parser.add_argument("--synthetic-layers", type=int, default=None,
                        help="serve a synthetic model of this many layers instead")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rest-clients", type=int, default=64)
    parser.add_argument("--grpc-clients", type=int, default=64)
    parser.add_argument("--max-queue-size", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--streak", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    plan = OverloadPlan(seconds=args.seconds, rest_clients=args.rest_clients,
                        grpc_clients=args.grpc_clients, streak=args.streak)  # fmt: skip
    flags = service_flags(args.max_queue_size, args.max_batch_size)
    with model_repository(args.model_repository, args.synthetic_layers) as (repository, model):
        with running_service(repository, *flags) as service:
            report = measure(service, model, plan)
        header = f"{environment()} · model {model} ({repository / model}) · {' '.join(flags)}"
    markdown = header + "\n\n" + table(report)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.md").write_text(markdown + "\n")
    (args.out / "overload.json").write_text(json.dumps({"header": header, **asdict(report)},
                                                       indent=1))  # fmt: skip
    plot_overload(report, args.out / "overload.png", header)
    print(f"\nplot: {args.out / 'overload.png'}")


if __name__ == "__main__":
    main()
