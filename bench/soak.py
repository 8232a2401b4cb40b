"""Benchmark: memory over a long run of mixed requests, to catch leaks.

``.venv/bin/python -m bench.soak`` starts ``python -m service`` as its own process on
``models/`` (or, when that holds no model, a synthetic model in a scratch folder) and sends
``--requests`` requests from ``--concurrency`` clients, cycling through every kind the
service answers: ``/predict`` with JSON pixels and with base64 PNGs, ``/loss`` on images and on
logits, the Open Inference Protocol's REST ``infer``, and gRPC ``Classifier.Predict``,
``Classifier.Loss`` and ``GRPCInferenceService.ModelInfer``, with 1–4 images each. Every
``--sample-every`` requests it reads the resident set of the serving process and its children
from /proc. Growth is measured from the end of the warm-up (the first ``--warm-up`` fraction of
the requests: allocator pools, caches and lazy imports fill up there) to the end. Every answer
must be a success. Output: a Markdown table on stdout and in ``<out>/soak.md``, the numbers in
``<out>/soak.json``, and RSS against requests in ``<out>/soak.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from bench._calls import OK, Call
from bench._load_plots import plot_soak
from bench._models import model_repository
from bench._proc import tree_rss_bytes
from bench._soak_requests import RequestMix
from bench._stats import environment, markdown_table, mb, percentile_ms
from service.launcher import RunningService, running_service
from service.lifetime import run_event_loop

__all__ = ["SoakPlan", "SoakReport", "main", "measure"]


@dataclass(frozen=True)
class SoakPlan:
    """How many requests, from how many clients, sampled how often."""

    requests: int = 5000
    concurrency: int = 4
    sample_every: int = 100
    warm_up: float = 0.2
    client_timeout: float = 30.0


@dataclass
class SoakReport:
    """What one soak measured (memory in MB)."""

    model: str
    plan: SoakPlan
    requests: int
    errors: dict[str, int]
    """Failed requests by request kind and outcome ("kind: outcome")."""
    by_kind: dict[str, int]
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    warm_up_requests: int
    rss_start_mb: float
    rss_warm_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    samples: list[tuple[int, float]]
    """(requests answered, RSS in MB), every ``plan.sample_every`` requests."""

    @property
    def growth_mb(self) -> float:
        return round(self.rss_end_mb - self.rss_warm_mb, 1)

    @property
    def growth_percent(self) -> float:
        return 100 * self.growth_mb / self.rss_warm_mb if self.rss_warm_mb else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def _measure(service: RunningService, model: str, plan: SoakPlan) -> SoakReport:
    pid = service.process.pid
    mix = await RequestMix.create(service, model, plan.client_timeout)
    calls: list[tuple[str, Call]] = []
    samples = [(0, mb(tree_rss_bytes(pid)))]
    issued = 0
    started = asyncio.get_running_loop().time()

    async def client() -> None:
        nonlocal issued
        caller = mix.client()
        while issued < plan.requests:
            index = issued
            issued += 1
            kind, call = await caller(index)
            calls.append((kind, call))
            if len(calls) % plan.sample_every == 0 or len(calls) == plan.requests:
                samples.append((len(calls), mb(tree_rss_bytes(pid))))

    try:
        await asyncio.gather(*(client() for _ in range(plan.concurrency)))
    finally:
        await mix.aclose()
    seconds = asyncio.get_running_loop().time() - started
    warm_up = round(plan.warm_up * plan.requests)
    warm = next(rss for done, rss in samples if done >= warm_up)
    failed = Counter(f"{kind}: {call.outcome}" for kind, call in calls if call.outcome != OK)
    return SoakReport(
        model=model,
        plan=plan,
        requests=len(calls),
        errors=dict(failed),
        by_kind=dict(Counter(kind for kind, _ in calls)),
        seconds=round(seconds, 2),
        p50_ms=percentile_ms((call.seconds for _, call in calls), 50),
        p99_ms=percentile_ms((call.seconds for _, call in calls), 99),
        warm_up_requests=warm_up,
        rss_start_mb=samples[0][1],
        rss_warm_mb=warm,
        rss_end_mb=samples[-1][1],
        rss_peak_mb=max(rss for _, rss in samples),
        samples=samples,
    )


def measure(service: RunningService, model: str, plan: SoakPlan) -> SoakReport:
    """Soak ``service`` (already started) with ``plan.requests`` mixed requests for ``model``."""
    return run_event_loop(_measure(service, model, plan))


def table(report: SoakReport) -> str:
    """The report as a Markdown table."""
    errors = ", ".join(f"{k}: {n}" for k, n in report.errors.items()) or "0"
    kinds = ", ".join(f"{k} {n}" for k, n in report.by_kind.items())
    return markdown_table([
        ("requests (by kind)", f"{report.requests} ({kinds})"),
        ("clients", report.plan.concurrency),
        ("seconds", report.seconds),
        ("requests/s", round(report.requests / report.seconds) if report.seconds else None),
        ("latency p50 / p99, ms", f"{report.p50_ms:.1f} / {report.p99_ms:.1f}"
         if report.p99_ms is not None else None),
        ("errors (must be 0)", errors),
        ("RSS at start, MB", report.rss_start_mb),
        (f"RSS after warm-up ({report.warm_up_requests} requests), MB", report.rss_warm_mb),
        ("RSS at the end, MB", report.rss_end_mb),
        ("RSS peak, MB", report.rss_peak_mb),
        ("growth after warm-up, MB", report.growth_mb),
        ("growth after warm-up, %", round(report.growth_percent, 2)),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=None,
                        help="default: models/ when it holds a model")  # fmt: skip
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--warm-up", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("service_flags", nargs="*", help="extra flags for python -m service")
    args = parser.parse_args()
    plan = SoakPlan(requests=args.requests, concurrency=args.concurrency,
                    sample_every=args.sample_every, warm_up=args.warm_up)  # fmt: skip
    with model_repository(args.model_repository) as (repository, model):
        with running_service(repository, *args.service_flags) as service:
            report = measure(service, model, plan)
        header = f"{environment()} · model {model} ({repository / model})"
    markdown = header + "\n\n" + table(report)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(markdown + "\n")
    result = {"header": header, **asdict(report), "growth_mb": report.growth_mb,
              "growth_percent": report.growth_percent}  # fmt: skip
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    plot_soak(report, args.out / "soak.png", header)
    print(f"\nplot: {args.out / 'soak.png'}")


if __name__ == "__main__":
    main()
