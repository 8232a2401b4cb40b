"""One request in flight over V2 gRPC: the service with lone runs on and off, against the least a
Python gRPC front can do with this model — a ``grpc.aio`` server that runs it in its handler on
the event loop (``bench.null_grpc`` kind ``model:FILE``: decode, run, softmax, encode, nothing
else) — against KServe's model server on the same file (:mod:`bench.peer_kserve`, which also runs
the model on its event loop; ``--no-peer`` leaves it out), and the model alone in-process,
alternating round by round in one run. Prints a
Markdown table of median p50s (``runs/bench/lone_request.md``).

    .venv/bin/python -m bench.lone_request [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from pathlib import Path

from bench._cli import load_parser
from bench._models import one_image_ms
from bench.bound import running_null_grpc
from bench.loadgen import GRPC_HEADERS, h2load, require
from bench.peer_kserve import running_kserve
from bench.serving import GRPC_V2, IMAGE, routes
from service.launcher import running_service

Server = Callable[[], AbstractContextManager[int]]
"""Starts a server; its gRPC port when entered."""


def servers(repository: Path, model_file: Path, model: str, peer: bool) -> dict[str, Server]:
    """What is measured, by the name the table gives it."""

    @contextmanager
    def minimal() -> Iterator[int]:
        with running_null_grpc(f"model:{model_file}") as (_, port):
            yield port

    def ours(*flags: str) -> Server:
        @contextmanager
        def start() -> Iterator[int]:
            with running_service(repository, *flags) as service:
                yield service.grpc_port

        return start

    @contextmanager
    def kserve() -> Iterator[int]:
        with running_kserve(model_file, model) as running:
            yield running.grpc_port

    measured: dict[str, Server] = {
        "ours, lone runs on (default)": ours(),
        "ours, --no-lone-runs": ours("--no-lone-runs"),
        "grpc.aio + onnxruntime in the handler (the floor)": minimal,
    }
    if peer:
        measured["KServe (peer: model on its event loop)"] = kserve
    return measured


def main() -> None:
    parser = load_parser(__doc__, seconds=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="leave KServe out")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    require("h2load")
    model_file = args.model_repository / args.model / "1" / "model.onnx"
    body = next(r for r in routes(args.model, IMAGE) if r.grpc).body
    p50s: dict[str, list[float]] = defaultdict(list)
    for round_ in range(args.rounds):
        p50s["onnxruntime alone, in-process"].append(one_image_ms(model_file))
        for name, start in servers(
            args.model_repository, model_file, args.model, not args.no_peer
        ).items():
            with start() as port:
                result = h2load(f"http://127.0.0.1:{port}{GRPC_V2}", body, GRPC_HEADERS,
                                concurrency=1, seconds=args.seconds)  # fmt: skip
            p50s[name].append(result.p50_ms)
            print(f"round {round_ + 1} · {name}: p50 {result.p50_ms:.2f} ms", flush=True)
    alone = statistics.median(p50s["onnxruntime alone, in-process"])
    lines = [
        f"{date.today()} · V2 gRPC, one request in flight, {args.seconds:g} s per point, "
        f"{args.rounds} rounds alternating; medians of the rounds' p50\n",
        "| what | p50 ms | over onnxruntime alone, ms | each round |",
        "|---|---:|---:|---|",
    ]
    for name, values in p50s.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {median:.2f} | {median - alone:+.2f} | {rounds} |")
    text = "\n".join(lines)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lone_request.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
