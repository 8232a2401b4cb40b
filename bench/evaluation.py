"""Evaluation throughput: ``python -m service.evaluate``'s engines against onnxruntime alone.

``python -m bench.evaluation --model-repository models`` scores the same ``.npz`` of synthetic
test images (tiled to ``--images``) with:

* **onnxruntime in-process** (the ceiling): logits only, the images already in memory as
  float32, onnxruntime's default threads, one run per chunk;
* **local** engine, 1 worker × all threads and one worker per core × 1 thread;
* **Ray** engine on a local Ray, one actor per core.

Each row has its rate end to end (start-up included: Ray's, the actors', the model's) and after
the first chunk came back, which is what a long job sees.

Every row reads the data, runs the model, computes the loss and the metrics, as a user's run
does; the table goes to ``runs/bench/evaluation.md`` and the figure to
``docs/images/evaluation-benchmark.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from service.cpus import usable_cpus
from service.evaluate.datasets import DatasetSpec
from service.evaluate.job import EvaluationJob, LossSpec
from service.evaluate.local_engine import LocalEngine
from service.evaluate.metrics import Tally
from service.evaluate.models import local_model
from service.evaluate.runner import Engine, evaluate
from training.data import load_cifar10
from training.datasets import dataset_folder

__all__ = ["Row", "main", "measure"]


@dataclass(frozen=True)
class Row:
    route: str
    images: int
    seconds: float
    """End to end: start-up (Ray's, the workers') included."""
    steady_images_per_second: float
    """After the first chunk came back: what a long job sees."""

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


def _dataset(out: Path, images: int, data_root: Path) -> Path:
    """The synthetic test images, tiled to ``images`` rows, as a plain ``.npz``."""
    test = load_cifar10(dataset_folder("synthetic", root=data_root))
    reps = -(-images // len(test.y_test))
    path = out / f"synthetic-{images}.npz"
    if not path.exists():
        np.savez(
            path,
            images=np.concatenate([test.x_test] * reps)[:images],
            labels=np.concatenate([test.y_test] * reps)[:images],
        )
    return path


def _ceiling(model_file: Path, data: Path, chunk: int) -> Row:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    with np.load(data) as arrays:
        images = arrays["images"].astype(np.float32)
    session.run(None, {name: images[:chunk]})
    started = time.perf_counter()
    for start in range(0, len(images), chunk):
        session.run(None, {name: images[start : start + chunk]})
    seconds = time.perf_counter() - started
    return Row("onnxruntime in-process (ceiling)", len(images), seconds, len(images) / seconds)


def _run(route: str, job: EvaluationJob, engine: Engine, chunk: int) -> Row:
    """The whole evaluation as ``evaluate`` runs it, timing each chunk's return."""
    returns: list[tuple[float, int]] = []
    started = time.perf_counter()

    def advance(rows: int) -> None:
        returns.append((time.perf_counter(), rows))

    result = evaluate(job, _Timed(engine, advance), chunk_size=chunk)
    seconds = time.perf_counter() - started
    (first, _), (last, _) = returns[0], returns[-1]
    steady = sum(rows for _, rows in returns[1:]) / (last - first)
    return Row(route, result.tally.total, seconds, steady)


class _Timed:
    """``engine``, also reporting each chunk's rows to ``advance``."""

    def __init__(self, engine: Engine, advance: Callable[[int], None]) -> None:
        self.engine, self.advance, self.name = engine, advance, engine.name

    def describe(self) -> dict[str, object]:
        return self.engine.describe()

    def run(self, job: Any, chunks: Any, advance: Any, first: Any = None) -> Iterator[Tally]:
        def both(rows: int) -> None:
            advance(rows)
            self.advance(rows)

        return self.engine.run(job, chunks, both, first)


def measure(repository: Path, images: int, chunk: int, out: Path, data_root: Path) -> list[Row]:
    """Every route of the table, one after the other (nothing else should run meanwhile)."""
    from service.evaluate.ray_engine import RayEngine

    cpus = usable_cpus()
    data = _dataset(out, images, data_root)
    model = local_model(repository, None, None, "cpu")
    loss = LossSpec()

    def job(threads: int) -> EvaluationJob:
        return EvaluationJob(DatasetSpec(str(data.resolve())), model, loss, threads)

    return [
        _ceiling(Path(model.path), data, chunk),
        _run(f"local, 1 worker × {cpus} threads", job(cpus), LocalEngine(1), chunk),
        _run(f"local, {cpus} workers × 1 thread", job(1), LocalEngine(cpus), chunk),
        _run(f"Ray Data (local Ray), {cpus} actors × 1 thread", job(1), RayEngine(actors=cpus),
             chunk),
    ]  # fmt: skip


def table(rows: list[Row], ceiling: Row) -> str:
    lines = [
        "| route | images | seconds, end to end | images/s, end to end | images/s after the "
        "first chunk | share of ceiling (after the first chunk) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        share = row.steady_images_per_second / ceiling.steady_images_per_second
        lines.append(
            f"| {row.route} | {row.images:,} | {row.seconds:.2f} | "
            f"{row.images_per_second:,.0f} | {row.steady_images_per_second:,.0f} | {share:.0%} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 0.8 * len(rows) + 1.8), constrained_layout=True)
    names = [r.route for r in rows][::-1]
    positions = np.arange(len(rows))
    for offset, label, rates in (
        (0.2, "after the first chunk", [r.steady_images_per_second for r in rows][::-1]),
        (-0.2, "end to end (start-up included)", [r.images_per_second for r in rows][::-1]),
    ):
        bars = axis.barh(positions + offset, rates, height=0.4, label=label)
        axis.bar_label(bars, [f"{r:,.0f}" for r in rates], padding=3, fontsize=8)
    axis.set_yticks(positions, names)
    axis.set(xlabel="images per second (reading, model, loss and metrics included)")
    axis.set_title(title, fontsize=10)
    axis.set_xlim(0, max(r.steady_images_per_second for r in rows) * 1.2)
    axis.legend(loc="lower right", fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.evaluation", description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--figure", type=Path, default=Path("docs/images/evaluation-benchmark.png"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = measure(args.model_repository, args.images, args.chunk_size, args.out, args.data_root)
    machine = f"{usable_cpus()} CPUs, {platform.machine()}, {date.today().isoformat()}"
    text = (
        f"Evaluation throughput, {args.images:,} images, chunks of {args.chunk_size} "
        f"({machine})\n\n{table(rows, rows[0])}"
    )
    print(text)
    (args.out / "evaluation.md").write_text(text)
    (args.out / "evaluation.json").write_text(
        json.dumps([asdict(r) | {"images_per_second": r.images_per_second} for r in rows], indent=2)
    )
    plot(rows, args.figure, f"Evaluation throughput on {machine}, synthetic images")
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
