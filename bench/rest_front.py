"""Which HTTP server should front REST: uvicorn (the service's) or granian (Rust: hyper and
tokio, embedded on the serving process's event loop by ``bench/_granian_front.py``). The same
service, model and flags behind each, driven by h2load over HTTP/1.1 on the REST paths of
``bench.serving``, the two alternating round by round in one run; granian is installed into
``.bench/granian`` on first use. Prints a Markdown table (``runs/bench/rest_front.md``) and
draws ``docs/images/rest-front.png``.

    .venv/bin/python -m bench.rest_front [--rounds 2] [--concurrency 1,16,32]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from bench._alternatives import bar_plot, installed
from bench._cli import counts, load_parser
from bench.loadgen import LoadResult, h2load, require
from bench.serving import IMAGE, routes
from service.launcher import REPO, running_service

HOME = REPO / ".bench" / "granian"
GRANIAN = "granian==2.8.9"
FRONTS = {"uvicorn": None, "granian, 1 runtime thread": "1", "granian, 2 runtime threads": "2"}


def granian_path() -> Path:
    """Where granian is installed."""
    return installed(HOME, GRANIAN, "granian")


@contextmanager
def serving(front: str, repository: Path) -> Iterator[str]:
    """The service with ``front`` in front of REST, ready when entered: its base URL."""
    threads = FRONTS[front]
    if threads is None:
        launched = running_service(repository)
    else:
        env = {"PYTHONPATH": str(granian_path()), "GRANIAN_RUNTIME_THREADS": threads}
        launched = running_service(repository, module="bench._granian_front", env=env)
    with launched as service:
        yield service.url


def run(args: argparse.Namespace) -> dict[tuple[str, str, int], list[LoadResult]]:
    paths = [r for r in routes(args.model, IMAGE) if not r.grpc]
    results: dict[tuple[str, str, int], list[LoadResult]] = defaultdict(list)
    for round_ in range(args.rounds):
        for front in args.fronts:
            with serving(front, args.model_repository) as url:
                for path in paths:
                    for level in args.concurrency:
                        result = h2load(
                            url + path.path, path.body, path.headers, concurrency=level,
                            seconds=args.seconds, http1=True,
                        )  # fmt: skip
                        results[(front, path.name, level)].append(result)
                        print(f"round {round_ + 1} · {front} · {path.name} · {level} in flight: "
                              f"{result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                              f"{result.failed} failed", flush=True)  # fmt: skip
    return results


def median(results: list[LoadResult], field: str) -> float:
    return float(statistics.median(float(getattr(r, field)) for r in results))


def table(results: dict[tuple[str, str, int], list[LoadResult]], fronts: list[str]) -> str:
    """Medians over the rounds; ``× uvicorn`` compares req/s at the same path and load."""
    lines = ["| front | path | in flight | req/s | p50 ms | p99 ms | × uvicorn | failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    keys = sorted({(path, level) for _, path, level in results}, key=lambda k: (k[0], k[1]))
    for path, level in keys:
        base = median(results[("uvicorn", path, level)], "rps")
        for front in fronts:
            runs = results[(front, path, level)]
            rps = median(runs, "rps")
            lines.append(
                f"| {front} | {path} | {level} | {rps:.0f} | {median(runs, 'p50_ms'):.2f} | "
                f"{median(runs, 'p99_ms'):.2f} | {rps / base:.2f} | {sum(r.failed for r in runs)} |"
            )
    return "\n".join(lines)


def _label(path: str, level: int) -> str:
    first, _, rest = path.partition(" ")
    return f"{first}\n{rest}\n{level} in flight"


def plot(
    results: dict[tuple[str, str, int], list[LoadResult]], fronts: list[str], path: Path, title: str
) -> None:
    keys = sorted({(p, level) for _, p, level in results})
    series = {
        front: [median(results[(front, p, level)], "rps") for p, level in keys] for front in fronts
    }
    labels = [_label(p, level) for p, level in keys]
    bar_plot(
        series, labels, ylabel="requests/s (median of rounds)", title=title, path=path, label_size=7
    )


def main() -> None:
    parser = load_parser(__doc__, seconds=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=counts, default=[1, 16, 32])
    parser.add_argument("--fronts", type=lambda s: s.split(";"), default=list(FRONTS),
                        help=f"';'-separated, of: {'; '.join(FRONTS)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--plot", type=Path, default=REPO / "docs/images/rest-front.png")
    args = parser.parse_args()
    if unknown := set(args.fronts) - set(FRONTS):
        parser.error(f"unknown fronts {sorted(unknown)}")
    if "uvicorn" not in args.fronts:
        parser.error("uvicorn is the baseline: keep it in --fronts")
    require("h2load")
    results = run(args)
    title = (f"{date.today().isoformat()} · {os.cpu_count()} CPUs · {GRANIAN} · "
             f"{args.rounds} rounds of {args.seconds:g} s per point")  # fmt: skip
    markdown = title + "\n\n" + table(results, args.fronts)
    print("\n" + markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rest_front.md").write_text(markdown + "\n")
    plot(results, args.fronts, args.plot, title)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
