"""Benchmark: what serving calibrated probabilities costs — the throughput and latency of a model
with a ``calibration.json`` against the same model without one, in one service process.

``.venv/bin/python -m bench.calibration`` copies the model ``models/`` serves (else a synthetic
one of the quickstart model's size) into a scratch repository twice, as ``plain`` and as
``calibrated`` (the same ``model.onnx`` plus a ``calibration.json`` with ``--temperature``,
0.62 by default, naming the file's SHA-256), starts ``python -m service`` on it as its own
process, and for each transport — REST ``/predict`` (JSON pixels) and gRPC V2 ``ModelInfer``
(raw UINT8 input), one image per request — keeps ``--clients`` requests in flight (16; one per
client) on one model at a time: a short warm-up of each, then ``--rounds`` alternating rounds of
``--seconds`` each (plain, calibrated, plain, calibrated …), so that drift in the machine hits
both models alike.

Every answer is checked: the calibrated model's must say ``calibrated: true`` and the
temperature, the plain model's ``calibrated: false`` (V2 responses carry both as ``parameters``);
an answer that does not, like an error, counts as a failed request.

Reported per transport and model: requests/s (median over rounds, min–max), p50/p99 latency
over all rounds, and calibrated ÷ plain requests/s per pair of rounds (median, min–max: the
spread shows the noise the ratio must be read against).

Output: a Markdown table on stdout and in ``<out>/calibration.md``, the numbers in
``<out>/calibration.json``, requests/s per round and model in ``<out>/calibration.png``
(default out: ``runs/bench-calibration``). Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson

from bench._calls import OK, Call, Caller, Outcomes, grpc_caller, rest_caller
from bench._http1 import Http1Connection, Response
from bench._models import copy_model, model_repository
from bench._stats import environment, markdown_table, percentile_ms, rounded
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service.calibration.file import Calibration, file_sha256, write_calibration
from service.launcher import running_service

__all__ = ["CalibrationReport", "main"]

MODELS = ("plain", "calibrated")
REST, GRPC = "REST /predict", "gRPC V2 ModelInfer"
TRANSPORTS = (REST, GRPC)
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
IMAGE = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)


@dataclass
class Round:
    """One round of one model over one transport (latency in ms)."""

    transport: str
    model: str
    index: int
    answered: int
    seconds: float
    failures: dict[str, int]
    rps: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class CalibrationReport:
    """What one run measured."""

    model: str
    temperature: float
    clients: int
    seconds: float
    rounds: list[Round] = field(default_factory=list)
    warm_up_failures: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    """Seconds of every answered request, by ``"<transport> · <model>"`` (not in the JSON)."""

    @property
    def failures(self) -> int:
        counted = sum(n for r in self.rounds for n in r.failures.values())
        return counted + sum(self.warm_up_failures.values())

    def of(self, transport: str, model: str) -> list[Round]:
        return [r for r in self.rounds if r.transport == transport and r.model == model]

    def ratios(self, transport: str) -> list[float]:
        """Calibrated ÷ plain requests/s, per pair of rounds."""
        pairs = zip(self.of(transport, "plain"), self.of(transport, "calibrated"), strict=True)
        return [c.rps / p.rps for p, c in pairs if p.rps]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for transport in TRANSPORTS:
            if not self.of(transport, "plain"):
                continue
            entry: dict[str, Any] = {}
            for model in MODELS:
                rps = [r.rps for r in self.of(transport, model)]
                seconds = self.latencies.get(f"{transport} · {model}", [])
                entry[model] = {
                    "rps_median": round(statistics.median(rps), 1),
                    "rps_min": round(min(rps), 1),
                    "rps_max": round(max(rps), 1),
                    "p50_ms": rounded(percentile_ms(seconds, 50)),
                    "p99_ms": rounded(percentile_ms(seconds, 99)),
                }
            ratios = self.ratios(transport)
            entry["ratio_median"] = round(statistics.median(ratios), 3) if ratios else None
            entry["ratio_min"] = round(min(ratios), 3) if ratios else None
            entry["ratio_max"] = round(max(ratios), 3) if ratios else None
            out[transport] = entry
        return out


def _check(calibrated: object, temperature: float, model: str, expected_t: float) -> str:
    """``"ok"`` when an answer says what its model should, else what is wrong."""
    want = model == "calibrated"
    if calibrated is not want:
        return f"{model} answered calibrated={calibrated!r}"
    if want and abs(temperature - expected_t) > 1e-6:
        return f"{model} answered temperature={temperature!r}"
    return OK


def _rest_caller(
    connection: Http1Connection, model: str, temperature: float, timeout: float
) -> Caller:
    """A ``/predict`` client whose answers must carry ``model``'s labels."""
    body = orjson.dumps({"model": model, "instances": IMAGE.tolist()})

    def check(response: Response) -> str:
        answer = orjson.loads(response.body)
        return _check(
            answer.get("calibrated"), answer.get("temperature") or 0.0, model, temperature
        )

    return rest_caller(connection, "/predict", body, timeout, check)


def _grpc_caller(
    channel: grpc.aio.Channel, model: str, temperature: float, timeout: float
) -> Caller:
    """A V2 ``ModelInfer`` client whose answers must carry ``model``'s labels."""
    method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(MODEL_INFER)
    request = v2.ModelInferRequest(model_name=model, raw_input_contents=[IMAGE.tobytes()])
    request.inputs.add(name="images", datatype="UINT8", shape=list(IMAGE.shape))

    def check(response: bytes) -> str:
        parameters = v2.ModelInferResponse.FromString(response).parameters
        calibrated = parameters["calibrated"].bool_param if "calibrated" in parameters else None
        t = parameters["temperature"].double_param if "temperature" in parameters else 0.0
        return _check(calibrated, t, model, temperature)

    return grpc_caller(method, request.SerializeToString(), timeout, check)


async def _load(
    http_port: int, grpc_port: int, transport: str, model: str, args: argparse.Namespace
) -> tuple[list[Call], float]:
    """``args.clients`` callers, one request in flight each, for ``args.seconds``: every call,
    and the seconds from the start to the last answer."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    connections = [Http1Connection("127.0.0.1", http_port) for _ in range(args.clients)]
    if transport == REST:
        callers = [_rest_caller(c, model, args.temperature, 30) for c in connections]
    else:
        callers = [_grpc_caller(channel, model, args.temperature, 30) for _ in range(args.clients)]
    calls: list[Call] = []
    started = time.monotonic()
    end = started + args.seconds

    async def client(caller: Caller) -> None:
        while time.monotonic() < end:
            calls.append(await caller())

    try:
        await asyncio.gather(*(client(c) for c in callers))
    finally:
        await channel.close()
        for connection in connections:
            await connection.close()
    return calls, max((c.ended for c in calls), default=end) - started


def _measure(report: CalibrationReport, http_port: int, grpc_port: int, args) -> None:
    warm_up = argparse.Namespace(**{**vars(args), "seconds": min(args.seconds, 1.5)})
    for transport in args.transports:
        for model in MODELS:
            calls, _ = asyncio.run(_load(http_port, grpc_port, transport, model, warm_up))
            for outcome, n in Outcomes.of(calls).failures.items():
                key = f"{transport} · {model}: {outcome}"
                report.warm_up_failures[key] = report.warm_up_failures.get(key, 0) + n
        for index in range(1, args.rounds + 1):
            for model in MODELS:
                calls, seconds = asyncio.run(_load(http_port, grpc_port, transport, model, args))
                ok = [c.seconds for c in calls if c.outcome == OK]
                report.latencies.setdefault(f"{transport} · {model}", []).extend(ok)
                outcomes = Outcomes.of(calls)
                failures = outcomes.failures
                report.rounds.append(Round(
                    transport, model, index, outcomes.admitted, round(seconds, 3), failures,
                    round(outcomes.admitted / seconds, 1) if seconds else 0.0,
                    rounded(outcomes.admitted_p50_ms), rounded(outcomes.admitted_p99_ms),
                ))  # fmt: skip
                print(f"{transport} · {model} round {index}: {outcomes.admitted / seconds:.0f} "
                      f"req/s, {sum(failures.values())} failed", flush=True)  # fmt: skip


def table(report: CalibrationReport) -> str:
    """The report as a Markdown table."""
    rows: list[tuple[str, object]] = [
        ("model (served twice: plain, calibrated)", f"{report.model}, T = {report.temperature}"),
        ("load", f"{report.clients} in flight, 1 image/request, "
                 f"{len(report.of(REST, 'plain')) or len(report.of(GRPC, 'plain'))} rounds × "
                 f"{report.seconds:g} s per model and transport, alternating"),
    ]  # fmt: skip
    for transport, entry in report.summary().items():
        for model in MODELS:
            m = entry[model]
            rows.append(
                (
                    f"{transport} · {model}: req/s, median (min–max)",
                    f"{m['rps_median']:.0f} ({m['rps_min']:.0f}–{m['rps_max']:.0f})",
                )
            )
            rows.append((f"{transport} · {model}: p50 / p99 (ms)",
                         f"{m['p50_ms']} / {m['p99_ms']}"))  # fmt: skip
        if entry["ratio_median"] is not None:
            rows.append((f"{transport}: calibrated ÷ plain req/s, median (min–max over pairs)",
                         f"{entry['ratio_median']:.3f} ({entry['ratio_min']:.3f}–"
                         f"{entry['ratio_max']:.3f})"))  # fmt: skip
    rows.append(("failed or wrongly labelled requests", report.failures))
    return markdown_table(rows)


def plot(report: CalibrationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    transports = [t for t in TRANSPORTS if report.of(t, "plain")]
    figure, axes = plt.subplots(1, len(transports), figsize=(5 * len(transports), 3.6),
                                squeeze=False)  # fmt: skip
    for axis, transport in zip(axes[0], transports, strict=True):
        for offset, model in ((-0.2, "plain"), (0.2, "calibrated")):
            rounds = report.of(transport, model)
            axis.bar([r.index + offset for r in rounds], [r.rps for r in rounds], width=0.4,
                     label=model)  # fmt: skip
        axis.set(xlabel="round", ylabel="requests/s (1 image each)", title=transport)
        axis.set_xticks([r.index for r in report.of(transport, "plain")])
        axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(f"{environment()} · {report.clients} in flight", fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-repository", type=Path, default=None)
    parser.add_argument("--temperature", type=float, default=0.62)
    parser.add_argument("--clients", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each model")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of each round")
    parser.add_argument("--transports", nargs="+", choices=["rest", "grpc"],
                        default=["rest", "grpc"])  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench-calibration"))
    args = parser.parse_args(argv)
    args.transports = [REST if t == "rest" else GRPC for t in args.transports]
    with model_repository(args.model_repository) as (source, name):
        report = CalibrationReport(name, args.temperature, args.clients, args.seconds)
        with tempfile.TemporaryDirectory(prefix="bench-calibration-") as scratch:
            root = Path(scratch)
            for model in MODELS:
                copy_model(source, name, root, model)
            folder = root / "calibrated" / "1"
            calibration = Calibration(temperature=args.temperature,
                                      model_sha256=file_sha256(folder / "model.onnx"))  # fmt: skip
            write_calibration(folder, calibration)
            with running_service(root) as service:
                _measure(report, service.http_port, service.grpc_port, args)
    args.out.mkdir(parents=True, exist_ok=True)
    text = f"{environment()}\n\n{table(report)}\n"
    print(text)
    (args.out / "calibration.md").write_text(text)
    data: dict[str, Any] = {k: v for k, v in asdict(report).items() if k != "latencies"}
    data["summary"] = report.summary()
    data["environment"] = environment()
    (args.out / "calibration.json").write_text(json.dumps(data, indent=2))
    plot(report, args.out / "calibration.png")
    print(f"wrote {args.out}/calibration.md, calibration.json, calibration.png")
    return 0 if report.failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
