"""``python -m bench.peer_sweep``: MLServer's settings swept, to run it at its best in
:mod:`bench.serving`. Each of :data:`bench.peer.SWEEP` (``parallel_workers`` × adaptive
batching) is started in turn and driven over V2 gRPC with 32 in flight and V2 REST JSON with
16 in flight, a few seconds a point, the whole grid ``--repeat`` times over (round after
round, so that a disturbance of the shared machine falls on one try of each setting, not on
all tries of one); each setting's figure is the best of its tries. Prints a Markdown table and
the best settings per path (write them into ``bench.peer.MLSERVER_BEST`` and its docstring)."""

from __future__ import annotations

from dataclasses import replace

from bench._cli import load_parser
from bench._points import Row, drive
from bench.loadgen import require
from bench.peer import SWEEP, MLServerSettings, running_mlserver
from bench.serving import IMAGE, routes

__all__ = ["POINTS", "best_settings", "main"]

POINTS = {"V2 gRPC raw": 32, "V2 REST JSON": 16}
"""The paths swept, and the requests in flight on each (the benchmark's headline points)."""


def best_settings(
    results: dict[MLServerSettings, dict[str, float]],
) -> dict[str, MLServerSettings]:
    """By path: the settings with the most requests a second on it (the first tried on a tie)."""
    paths = dict.fromkeys(path for rates in results.values() for path in rates)
    return {
        path: max((s for s in results if path in results[s]), key=lambda s: results[s][path])
        for path in paths
    }


def sweep_table(results: dict[MLServerSettings, dict[str, float]]) -> str:
    paths = list(POINTS)
    best = best_settings(results)
    lines = [
        "| parallel_workers | batching | "
        + " | ".join(f"{p} at {POINTS[p]}, req/s" for p in paths) + " |",
        "|---:|---|" + "---:|" * len(paths),
    ]  # fmt: skip
    for settings, rates in results.items():
        cells = " | ".join(
            f"**{rates[p]:.0f}**" if best.get(p) == settings else f"{rates.get(p, 0):.0f}"
            for p in paths
        )
        lines.append(f"| {settings.parallel_workers} | {settings.batching} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = load_parser(__doc__, seconds=3.0)
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the whole grid")
    parser.add_argument("--debug", action="store_true", help="with MLServer's debug mode on")
    args = parser.parse_args()
    require("h2load")
    model_file = args.model_repository / args.model / "1" / "model.onnx"
    swept = [r for r in routes(args.model, IMAGE) if r.name in POINTS]
    grid = [replace(s, debug=True) if args.debug else s for s in SWEEP]
    results: dict[MLServerSettings, dict[str, float]] = {s: {} for s in grid}
    for _ in range(args.repeat):
        for settings in grid:
            with running_mlserver(model_file, args.model, settings) as peer:
                rows: list[Row] = [
                    drive(peer.name, (peer.grpc_port, peer.http_port), route, POINTS[route.name],
                          args.seconds, peer.grpc_errors, peer.settings)
                    for route in swept
                ]  # fmt: skip
            failed = sum(r.result.failed for r in rows)
            if failed:
                print(f"  {settings.label}: {failed} failed requests", flush=True)
            for row in rows:
                best = results[settings].get(row.route, 0.0)
                results[settings][row.route] = max(best, row.result.rps)
    print("\n" + sweep_table(results) + "\n")
    for path, settings in best_settings(results).items():
        print(f"best on {path} at {POINTS[path]} in flight: {settings.label} "
              f"({results[settings][path]:.0f} req/s)")  # fmt: skip


if __name__ == "__main__":
    main()
