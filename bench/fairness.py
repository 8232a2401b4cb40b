"""Benchmark: fair transports. Two overloads of the same service (``bench.overload``'s, each
transport's clients in a process of their own): a REST flood with gRPC callers beside it,
then a gRPC flood with REST callers beside it (64 flooding clients, 16 beside, a queue of 8 and
batches of 8 by default). For the transport beside the flood the table gives its answers per
second and latency, and the recovery after each flood, against the targets: ≥ 100 answers/s,
p99 ≤ 250 ms, recovery ≤ 1 s.

``.venv/bin/python -m bench.fairness`` writes ``<out>/fairness.md`` and ``.json``, and one
timeline plot per direction (``<out>/rest-flood.png``, ``<out>/grpc-flood.png``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from bench._load_plots import plot_overload
from bench._models import model_repository
from bench._stats import environment
from bench.overload import OverloadPlan, OverloadReport, measure, service_flags
from service.launcher import running_service

__all__ = ["TARGETS", "main", "summary"]

TARGETS = {"ok_per_s": 100.0, "p99_ms": 250.0, "recovery_s": 1.0}
"""What the transport beside a flood must keep, and how soon the service must be normal."""


def summary(directions: dict[str, OverloadReport]) -> str:
    """One Markdown row per direction: the flood, the transport beside it, and the targets."""
    lines = [
        "| flood | beside it | beside: answers/s | beside: p50 / p99 ms | beside: shed % "
        "| flood: answers/s | recovery s | targets met |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for flood, report in directions.items():
        beside = "grpc" if flood == "rest" else "rest"
        other, mine = report.by_transport[beside], report.by_transport[flood]
        seconds = report.plan.seconds
        ok_per_s = other.admitted / seconds
        p99 = other.admitted_p99_ms
        met = (
            ok_per_s >= TARGETS["ok_per_s"]
            and p99 is not None
            and p99 <= TARGETS["p99_ms"]
            and report.recovery_s is not None
            and report.recovery_s <= TARGETS["recovery_s"]
        )
        name = {"rest": "REST", "grpc": "gRPC"}
        recovery = "never" if report.recovery_s is None else f"{report.recovery_s:.2f}"
        lines.append(
            f"| {name[flood]} × {getattr(report.plan, flood + '_clients')} "
            f"| {name[beside]} × {getattr(report.plan, beside + '_clients')} "
            f"| {ok_per_s:.0f} | {other.admitted_p50_ms or 0:.1f} / {p99 or 0:.1f} "
            f"| {other.shed_percent:.1f} | {mine.admitted / seconds:.0f} | {recovery} "
            f"| {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood", type=int, default=64, help="clients of the flooding transport")
    parser.add_argument("--beside", type=int, default=16, help="clients of the other transport")
    parser.add_argument("--max-queue-size", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fairness"))
    parser.add_argument("--service-flag", action="append", default=[],
                        help="an extra flag for python -m service (repeatable)")  # fmt: skip
    args = parser.parse_args()
    flags = (*service_flags(args.max_queue_size, args.max_batch_size), *args.service_flag)
    plans = {
        "rest": OverloadPlan(seconds=args.seconds, rest_clients=args.flood,
                             grpc_clients=args.beside),
        "grpc": OverloadPlan(seconds=args.seconds, rest_clients=args.beside,
                             grpc_clients=args.flood),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, OverloadReport] = {}
    with model_repository(args.model_repository, None) as (repository, model):
        header = f"{environment()} · model {model} · {' '.join(flags)}"
        for flood, plan in plans.items():
            with running_service(repository, *flags) as service:
                reports[flood] = measure(service, model, plan)
            plot_overload(reports[flood], args.out / f"{flood}-flood.png",
                          f"{header} · {flood} flood")  # fmt: skip
    markdown = header + "\n\n" + summary(reports)
    print(markdown)
    (args.out / "fairness.md").write_text(markdown + "\n")
    (args.out / "fairness.json").write_text(json.dumps(
        {"header": header, **{flood: asdict(r) for flood, r in reports.items()}}, indent=1
    ))  # fmt: skip
    print(f"\nplots: {args.out}/rest-flood.png, {args.out}/grpc-flood.png")


if __name__ == "__main__":
    main()
