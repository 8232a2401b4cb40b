"""``python -m service.client``: predict image files, or evaluate a loss on a labelled batch.

    python -m service.client predict cat.png dog.jpg [--grpc HOST:PORT | --http URL] [--top-k 5]
    python -m service.client loss batch.npz --loss sparse_categorical_crossentropy
    python -m service.client --http https://host:8000 --ca-file ca.pem --api-key KEY predict x.png

A batch file is a numpy ``.npz`` holding ``labels`` and one of ``logits``, ``probabilities``
or ``images`` (pixels ``[N, H, W, C]`` in 0–255); the model runs for ``images``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from service.client._grpc import GrpcClient
from service.client._rest import RestClient
from service.client._results import RequestError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--grpc", metavar="HOST:PORT", help="gRPC address (default 127.0.0.1:50051)"
    )
    target.add_argument("--http", metavar="URL", help="REST base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SERVICE_API_KEY"),
        help="API key, when the service requires one (default: $SERVICE_API_KEY)",
    )
    parser.add_argument(
        "--ca-file", type=Path, help="CA that signed the service's certificate (TLS)"
    )
    parser.add_argument("--cert", type=Path, help="client certificate (mutual TLS), with --key")
    parser.add_argument("--key", type=Path, help="the client certificate's private key")
    parser.add_argument(
        "--tls", action="store_true", help="gRPC over TLS trusting the system's CAs"
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--version", default=None)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="top-k classes of image files")
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--temperature", type=float, default=1.0)
    loss = commands.add_parser("loss", help="a loss over a labelled .npz batch")
    loss.add_argument("batch", type=Path)
    loss.add_argument("--loss", default="sparse_categorical_crossentropy")
    loss.add_argument("--reduction", default="sum_over_batch_size")
    return parser


def _client(args: argparse.Namespace) -> GrpcClient | RestClient:
    if (args.cert is None) != (args.key is None):
        raise SystemExit("error: --cert and --key go together")
    if args.http:
        cert = None if args.cert is None else (args.cert, args.key)
        verify = True if args.ca_file is None else args.ca_file
        return RestClient(args.http, api_key=args.api_key, verify=verify, cert=cert)
    return GrpcClient(
        args.grpc or "127.0.0.1:50051", api_key=args.api_key, tls=args.tls,
        ca_file=args.ca_file, cert_file=args.cert, key_file=args.key,
    )  # fmt: skip


def _run(args: argparse.Namespace) -> None:
    with _client(args) as client:
        if args.command == "predict":
            images = [path.read_bytes() for path in args.files]
            result = client.predict(
                images, model=args.model, version=args.version, top_k=args.top_k,
                temperature=args.temperature,
            )  # fmt: skip
            print(f"model {result.model} version {result.version}")
            for path, row in zip(args.files, result.top_k, strict=True):
                ranked = ", ".join(f"{c.label} {c.score:.4f}" for c in row)
                print(f"{path}: {ranked}")
            return
        with np.load(args.batch) as batch:
            arrays = {name: batch[name] for name in batch.files}
        if "labels" not in arrays:
            raise SystemExit(f"{args.batch} has no 'labels' array")
        inputs = {k: arrays[k] for k in ("logits", "probabilities", "images") if k in arrays}
        outcome = client.loss(
            args.loss, arrays["labels"], model=args.model, version=args.version,
            reduction=args.reduction, **inputs,
        )  # fmt: skip
        print(f"{outcome.loss} ({outcome.reduction}) = {outcome.value}")
        if outcome.metrics:
            print(", ".join(f"{name} {value:.4f}" for name, value in outcome.metrics.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when the service refuses the request)."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except RequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, OSError) as exc:  # OSError: a TLS file that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
