"""Which Python gRPC server costs least per call: null servers (a fixed response at once) of
each kind under the benchmark's h2load load, alternating round by round in one run —
``grpc.aio`` on uvloop (the service's, and the Python-front bound's), grpcio's thread-pool
server, and grpclib (pure Python on h2; installed into ``.bench/grpclib`` on first use). Their
own CPU per call is read from /proc as :mod:`bench.bound` does. Prints a Markdown table
(``runs/bench/grpc_fronts.md``) and draws ``docs/images/grpc-fronts.png``.

    .venv/bin/python -m bench.grpc_fronts [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from datetime import date
from pathlib import Path

from bench._alternatives import bar_plot, installed
from bench._cli import counts
from bench.bound import measure_null_server, running_null_grpc
from bench.loadgen import GRPC_HEADERS, require
from bench.serving import GRPC_V2, IMAGE, routes
from service.launcher import REPO

HOME = REPO / ".bench" / "grpclib"
GRPCLIB = "grpclib==0.4.9"
KINDS = ("aio", "sync-4", "sync-16", "grpclib")
Sample = tuple[float, float, float, float]
"""req/s, p50 ms, the server's CPU µs a call, h2load's CPU µs a call."""


def grpclib_env() -> dict[str, str]:
    """The environment that puts grpclib on the path."""
    target = installed(HOME, GRPCLIB, "grpclib")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(target)]))


def run(args: argparse.Namespace) -> dict[tuple[str, int], list[Sample]]:
    body = next(r for r in routes("cifar10", IMAGE) if r.grpc).body
    samples: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for round_ in range(args.rounds):
        for kind in args.kinds:
            env = grpclib_env() if kind == "grpclib" else None
            with running_null_grpc(kind, env) as (pid, port):
                for level in args.concurrency:
                    result, server_us, load_us = measure_null_server(
                        pid, f"http://127.0.0.1:{port}{GRPC_V2}", body, GRPC_HEADERS,
                        concurrency=level, seconds=args.seconds, http1=False,
                    )  # fmt: skip
                    samples[(kind, level)].append((result.rps, result.p50_ms, server_us, load_us))
                    print(f"round {round_ + 1} · {kind} · {level} in flight: {result.rps:.0f} "
                          f"req/s, server {server_us:.0f} µs a call", flush=True)  # fmt: skip
    return samples


def table(samples: dict[tuple[str, int], list[Sample]]) -> str:
    """Medians over the rounds."""
    lines = [
        "| null server | in flight | req/s | p50 ms | its CPU µs a call | h2load's µs a call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (kind, level), runs in sorted(samples.items(), key=lambda item: (item[0][1], item[0][0])):
        rps, p50, server, load = (statistics.median(column) for column in zip(*runs, strict=True))
        lines.append(f"| {kind} | {level} | {rps:.0f} | {p50:.2f} | {server:.0f} | {load:.0f} |")
    return "\n".join(lines)


def plot(samples: dict[tuple[str, int], list[Sample]], path: Path, title: str) -> None:
    kinds = list(dict.fromkeys(kind for kind, _ in samples))
    levels = sorted({level for _, level in samples})
    series = {
        f"{level} in flight": [
            statistics.median(s[2] for s in samples[(kind, level)]) for kind in kinds
        ]
        for level in levels
    }
    bar_plot(
        series, kinds, ylabel="server CPU µs a call (median of rounds)", title=title, path=path
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point")
    parser.add_argument("--concurrency", type=counts, default=[1, 32])
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=list(KINDS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--plot", type=Path, default=REPO / "docs/images/grpc-fronts.png")
    args = parser.parse_args()
    require("h2load")
    samples = run(args)
    title = (f"{date.today().isoformat()} · {os.cpu_count()} CPUs · null gRPC servers · "
             f"{args.rounds} rounds of {args.seconds:g} s per point")  # fmt: skip
    markdown = title + "\n\n" + table(samples)
    print("\n" + markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grpc_fronts.md").write_text(markdown + "\n")
    plot(samples, args.plot, title)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
