"""Where the CPU goes per request: the service under h2load over V2 gRPC, its threads and its
model process read from /proc (Linux), next to the same load on a null ``grpc.aio`` server and
onnxruntime alone. Run ``.venv/bin/python -m bench.cpu_profile`` after ``make serve`` has built
the default model; prints a Markdown table."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench._cli import load_parser
from bench._models import one_image_ms
from bench.loadgen import GRPC_HEADERS, h2load, require
from bench.serving import GRPC_V2, IMAGE, routes
from service.launcher import REPO, free_port, running_service, stop_process

TICKS = os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds by thread name for ``pid`` and, as ``model process``, its children."""
    found: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        found["event loop" if task.name == str(pid) else f"thread {name}"] += (
            int(fields[11]) + int(fields[12])
        ) / TICKS
        for child in (task / "children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            found["model process"] += (int(fields[11]) + int(fields[12])) / TICKS
    return found


WARM_UP = 0.5


def measure(pid: int, port: int, body: bytes, concurrency: int, seconds: float):
    """A load run, and the CPU microseconds per request of each thread group and of h2load.
    The CPU counters also cover the warm-up, so the request count is scaled to match."""
    before = thread_seconds(pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = h2load(f"http://127.0.0.1:{port}{GRPC_V2}", body, GRPC_HEADERS,
                    concurrency=concurrency, seconds=seconds, warm_up=WARM_UP)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    usage = {k: v - before.get(k, 0.0) for k, v in thread_seconds(pid).items()}
    requests = result.requests * (seconds + WARM_UP) / seconds
    return result, {k: 1e6 * v / requests for k, v in usage.items()}, 1e6 * load / requests


def main() -> None:
    parser = load_parser(__doc__, seconds=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    require("h2load")
    body = routes(args.model, IMAGE)[0].body
    rows = []
    with running_service(args.model_repository) as service:
        result, usage, load = measure(service.process.pid, service.grpc_port, body,
                                      args.concurrency, args.seconds)  # fmt: skip
        rows.append(("service", result.rps, usage, load))
    port = free_port()
    null = subprocess.Popen([sys.executable, "-m", "bench.null_grpc", str(port)], cwd=REPO)
    try:
        time.sleep(2)
        result, usage, load = measure(null.pid, port, body, args.concurrency, args.seconds)
        rows.append(("null grpc.aio server", result.rps, usage, load))
    finally:
        stop_process(null)
    onnx_us = 1e3 * one_image_ms(args.model_repository / args.model / "1" / "model.onnx", 500)
    print(f"V2 gRPC, {args.concurrency} in flight, {args.seconds:g} s; CPU microseconds per "
          f"request (onnxruntime alone, one thread, one image: {onnx_us:.0f} µs)\n")  # fmt: skip
    names = sorted({name for _, _, usage, _ in rows for name in usage})
    print("| server | req/s | " + " | ".join(names) + " | h2load | total |")
    print("|---|---:|" + "---:|" * (len(names) + 2))
    for server, rps, usage, load in rows:
        cells = " | ".join(f"{usage.get(n, 0):.0f}" for n in names)
        total = sum(usage.values()) + load
        print(f"| {server} | {rps:.0f} | {cells} | {load:.0f} | {total:.0f} |")


if __name__ == "__main__":
    main()
