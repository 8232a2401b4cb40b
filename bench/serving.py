"""Benchmark: the service under load, against the in-process onnxruntime ceiling, the
Python-front bound and two peer servers on the same ONNX file, all measured in the same run on
this machine.

``make bench`` runs it (or ``.venv/bin/python -m bench.serving`` after ``make serve`` has built
the default model). It starts ``python -m service`` as its own process and drives it with h2load
at each concurrency over five paths, one 32×32 image per request, with batching on and off; then
the same over V2 gRPC and V2 REST JSON against the peers, each at its best settings (installed
into ``.bench/`` on first use): MLServer (:mod:`bench.peer`, settings from its sweep,
``python -m bench.peer_sweep``) and KServe's model server (:mod:`bench.peer_kserve`). With
batching on, the service and the peers run side by side and each point is measured in
``--rounds`` rounds, the servers taking turns (:mod:`bench.head_to_head`; the row is the median
round); with batching off, the service alone, one run a point. Also against
nginx null endpoints (what the load generator alone drives); and against a null ``grpc.aio``
server and a null ASGI app on uvicorn, whose CPU per call gives the Python-front bound
(:mod:`bench.bound`). ``× best peer`` compares each of our rows with the faster peer on the
same peer path at the same number in flight. Output: a Markdown table on stdout and in
``runs/bench/serving.md``, the numbers in ``runs/bench/serving.json``, and a plot in
``docs/images/serving-benchmark.png``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
from contextlib import ExitStack
from dataclasses import asdict, replace
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench._cli import counts, load_parser
from bench._points import Route, Row, drive, service_grpc_errors
from bench.bound import (
    BOUND_CONCURRENCY,
    Bound,
    measure_null_server,
    model_us_per_image,
    running_null_asgi,
    running_null_grpc,
)
from bench.ceiling import Ceiling, measure_ceiling
from bench.head_to_head import Contender, head_to_head
from bench.loadgen import GRPC_HEADERS, grpc_frame, require
from bench.null import running_null
from bench.peer import MLSERVER_BEST, Peer, running_mlserver
from bench.peer_kserve import running_kserve
from bench.plot import plot
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service.launcher import REPO, running_service

__all__ = ["main"]

IMAGE = REPO / "examples" / "images" / "ring.png"
GRPC_V2 = "/inference.GRPCInferenceService/ModelInfer"
PEERS = ("MLServer", "KServe")
PEER_ROUTES = ("V2 gRPC raw", "V2 REST JSON")
"""The paths every peer serves as we do."""


def routes(model: str, image_file: Path) -> list[Route]:
    from PIL import Image

    pixels = np.asarray(Image.open(image_file).convert("RGB"), dtype=np.uint8)[None]
    shape = list(pixels.shape)
    infer = f"/v2/models/{model}/infer"
    request = v2.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="UINT8", shape=shape)
    request.raw_input_contents.append(pixels.tobytes())
    binary_header = json.dumps({"inputs": [{
        "name": "images", "shape": shape, "datatype": "UINT8",
        "parameters": {"binary_data_size": pixels.nbytes},
    }]}).encode()  # fmt: skip
    v2_json = json.dumps({"inputs": [{
        "name": "images", "shape": shape, "datatype": "UINT8", "data": pixels.ravel().tolist(),
    }]}).encode()  # fmt: skip
    json_headers = {"content-type": "application/json"}
    png = base64.b64encode(image_file.read_bytes()).decode()
    return [
        Route("V2 gRPC raw", True, GRPC_V2, grpc_frame(request.SerializeToString()),
              GRPC_HEADERS, "V2 gRPC raw"),
        Route("V2 REST binary", False, infer, binary_header + pixels.tobytes(),
              {"Inference-Header-Content-Length": str(len(binary_header)),
               "content-type": "application/octet-stream"}, "V2 REST JSON"),
        Route("V2 REST JSON", False, infer, v2_json, json_headers, "V2 REST JSON"),
        Route("/predict JSON", False, "/predict",
              json.dumps({"instances": pixels.tolist()}).encode(), json_headers, "V2 REST JSON"),
        Route("/predict base64 PNG", False, "/predict",
              json.dumps({"images": [png]}).encode(), json_headers, "V2 REST JSON"),
    ]  # fmt: skip


def transport(route: str) -> str:
    """``gRPC`` or ``REST``: how ``route`` travels (the key of the bounds)."""
    return "gRPC" if "gRPC" in route else "REST"


def measure_bounds(model_file: Path, all_routes: list[Route], seconds: float) -> list[Bound]:
    """The Python-front bound of each transport (:mod:`bench.bound`)."""
    model_us = model_us_per_image(model_file)
    cores = os.cpu_count() or 1
    by_name = {route.name: route for route in all_routes}
    bounds = []
    for name, server, running in (
        ("V2 gRPC raw", "null grpc.aio server", running_null_grpc),
        ("V2 REST JSON", "null ASGI app on uvicorn", running_null_asgi),
    ):
        route = by_name[name]
        concurrency = BOUND_CONCURRENCY[transport(name)]
        with running() as (pid, port):
            result, server_us, load_us = measure_null_server(
                pid, f"http://127.0.0.1:{port}{route.path}", route.body, route.headers,
                concurrency=concurrency, seconds=seconds, http1=not route.grpc,
            )  # fmt: skip
        bound = Bound(transport(name), server, concurrency, result.rps, server_us, load_us,
                      model_us, cores)  # fmt: skip
        print(f"{server} · {name} · {concurrency} in flight: {result.rps:.0f} req/s, "
              f"{server_us:.0f} µs CPU a call (h2load {load_us:.0f} µs); model {model_us:.0f} "
              f"µs an image; bound {bound.rps:.0f} req/s", flush=True)  # fmt: skip
        bounds.append(bound)
    return bounds


def run(args: argparse.Namespace) -> tuple[Ceiling, list[Bound], list[Row]]:
    model_file = args.model_repository / args.model / "1" / "model.onnx"
    all_routes = routes(args.model, IMAGE)
    ceiling = measure_ceiling(model_file)
    print(f"ceiling: {ceiling.best_images_per_second:.0f} img/s at batch {ceiling.best_batch}, "
          f"batch-1 latency {ceiling.batch1_ms:.2f} ms", flush=True)  # fmt: skip
    bounds = measure_bounds(model_file, all_routes, args.seconds)
    rows: list[Row] = []
    levels = args.concurrency
    with running_null() as (http_port, grpc_port):
        null_routes = [replace(r, name=f"null {'gRPC' if r.grpc else 'REST'}")
                       for r in (all_routes[0], all_routes[2])]  # fmt: skip
        rows += [drive("nginx null", (grpc_port, http_port), route, c, args.seconds)
                 for route in null_routes for c in levels]  # fmt: skip
    # Batching on, the service's defaults: side by side with the peers, in rounds.
    compared = [r for r in all_routes if r.name in PEER_ROUTES]
    with ExitStack() as servers:
        service = servers.enter_context(running_service(args.model_repository, *args.service_flags))
        ours = Peer("ours", "on", service.http_port, service.grpc_port,
                    partial(service_grpc_errors, service.url))  # fmt: skip
        contenders = [Contender(ours, all_routes)]
        if "MLServer" in args.peers:
            # One MLServer per distinct best setting, each measured on the paths it is best on.
            for settings in dict.fromkeys(MLSERVER_BEST[r.name] for r in compared):
                peer = servers.enter_context(running_mlserver(model_file, args.model, settings))
                mine = [r for r in compared if MLSERVER_BEST[r.name] == settings]
                contenders.append(Contender(peer, mine))
        if "KServe" in args.peers:
            kserve = servers.enter_context(running_kserve(model_file, args.model))
            contenders.append(Contender(kserve, compared))
        rows += head_to_head(contenders, levels, args.rounds, args.seconds)
    # Batching off: the service alone, one run per point.
    flags = [*args.service_flags, "--no-batching"]
    with running_service(args.model_repository, *flags) as service:
        errors = partial(service_grpc_errors, service.url)
        ports = (service.grpc_port, service.http_port)
        rows += [drive("ours", ports, route, c, args.seconds, errors, "off")
                 for route in all_routes for c in levels]  # fmt: skip
    return ceiling, bounds, rows


def best_peers(rows: list[Row]) -> dict[tuple[str, int], Row]:
    """By (path, requests in flight): the peers' row with the most requests a second."""
    best: dict[tuple[str, int], Row] = {}
    for row in rows:
        key = (row.route, row.concurrency)
        if row.server in PEERS and (key not in best or row.result.rps > best[key].result.rps):
            best[key] = row
    return best


def table(ceiling: Ceiling, bounds: list[Bound], rows: list[Row], all_routes: list[Route]) -> str:
    peers = best_peers(rows)
    compare = {route.name: route.peer for route in all_routes}
    bound = {b.transport: b.rps for b in bounds}
    lines = [
        "| server | path | batching | in flight | req/s | p50 ms | p99 ms | % of ceiling "
        "| % of bound | × best peer | best peer | errors | req/s by round |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        result = row.result
        share = 100 * result.rps / ceiling.best_images_per_second
        of_bound = ""
        if row.server != "nginx null" and transport(row.route) in bound:
            of_bound = f"{100 * result.rps / bound[transport(row.route)]:.0f}%"
        peer = peers.get((compare.get(row.route) or "", row.concurrency))
        versus = which = ""
        if peer and row.server == "ours":
            versus, which = f"{result.rps / peer.result.rps:.2f}", peer.server
        lines.append(
            f"| {row.server} | {row.route} | {row.batching} | {row.concurrency} "
            f"| {result.rps:.0f} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | {share:.0f}% "
            f"| {of_bound} | {versus} | {which} | {result.failed} "
            f"| {', '.join(f'{rps:.0f}' for rps in row.rounds)} |"
        )
    return "\n".join(lines)


def bound_table(bounds: list[Bound]) -> str:
    lines = [
        "| transport | null server | in flight | its req/s | its CPU µs a call "
        "| h2load's µs a call | model µs an image | cores | bound req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {b.transport} | {b.server} | {b.concurrency} | {b.null_rps:.0f} | {b.server_us:.0f} "
        f"| {b.load_us:.0f} | {b.model_us:.0f} | {b.cores} | {b.rps:.0f} |"
        for b in bounds
    ]
    return "\n".join(lines)


def main() -> None:
    parser = load_parser(__doc__, seconds=5.0)
    parser.add_argument("--concurrency", type=counts, default=[1, 8, 16, 32])
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each batching-on point, beside the peers")  # fmt: skip
    parser.add_argument("--peers", type=lambda s: [p for p in s.split(",") if p],
                        default=list(PEERS), help="comma-separated: MLServer,KServe")  # fmt: skip
    parser.add_argument("--skip-peer", action="store_true", help="leave every peer out")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--plot", type=Path, default=REPO / "docs/images/serving-benchmark.png")
    parser.add_argument("service_flags", nargs="*", help="extra flags for python -m service")
    args = parser.parse_args()
    if args.skip_peer:
        args.peers = []
    if unknown := set(args.peers) - set(PEERS):
        parser.error(f"unknown peers {sorted(unknown)}; known: {', '.join(PEERS)}")
    require("h2load", "nginx")
    ceiling, bounds, rows = run(args)
    mlserver = "; ".join(f"{path}: {s.label}" for path, s in MLSERVER_BEST.items())
    header = (
        f"{date.today().isoformat()} · {platform.machine()} · {os.cpu_count()} CPUs · "
        f"onnxruntime {ort.__version__} · model {args.model} "
        f"({args.model_repository / args.model}) · {args.seconds:g} s per point · "
        f"ceiling {ceiling.best_images_per_second:.0f} img/s (batch {ceiling.best_batch}), "
        f"batch-1 latency {ceiling.batch1_ms:.2f} ms · Python-front bound "
        + ", ".join(f"{b.transport} {b.rps:.0f} req/s" for b in bounds)
        + f" · MLServer ({mlserver})"
    )
    markdown = (
        header + "\n\n" + table(ceiling, bounds, rows, routes(args.model, IMAGE))
        + "\n\nThe Python-front bound (cores × 10⁶ / (null server's CPU µs a call + h2load's µs "
        "a call + model's µs an image)):\n\n" + bound_table(bounds)
    )  # fmt: skip
    print("\n" + markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.md").write_text(markdown + "\n")
    (args.out / "serving.json").write_text(json.dumps({
        "header": header, "ceiling": asdict(ceiling),
        "bounds": [{**asdict(b), "rps": b.rps} for b in bounds],
        "rows": [{**asdict(r), "rps": r.result.rps} for r in rows],
    }, indent=1))  # fmt: skip
    plot(ceiling, rows, args.plot, header, {b.transport: b.rps for b in bounds})
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
