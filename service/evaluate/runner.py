"""One evaluation: plan the chunks, run them on an engine, add up their tallies."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from service.evaluate.errors import EvaluationError
from service.evaluate.job import ChunkEvaluator, EvaluationJob, LossSpec, plan_chunks
from service.evaluate.local_engine import LocalEngine
from service.evaluate.metrics import Tally
from service.evaluate.models import ServedModel, local_model, open_scorer
from service.evaluate.settings import EvaluateSettings

__all__ = ["Engine", "Evaluation", "evaluate", "job_from_settings"]


class Engine(Protocol):
    name: str

    def describe(self) -> dict[str, object]: ...

    def run(
        self,
        job: EvaluationJob,
        chunks: list[tuple[int, int]],
        advance: Callable[[int], None],
        first: ChunkEvaluator | None = None,
    ) -> Iterator[Tally]: ...


@dataclass(frozen=True)
class Evaluation:
    """The sums of a finished evaluation and what produced them."""

    tally: Tally
    loss: LossSpec
    loss_value: float
    class_names: tuple[str, ...]
    dataset: dict[str, Any]
    model: dict[str, Any]
    run: dict[str, Any]


def _class_names(evaluator: ChunkEvaluator, classes: int) -> tuple[str, ...]:
    for names in (evaluator.dataset.class_names, evaluator.scorer.class_names):
        if names is not None and len(names) == classes:
            return tuple(names)
    return tuple(f"class_{i}" for i in range(classes))


def evaluate(
    job: EvaluationJob,
    engine: Engine,
    *,
    chunk_size: int = 1024,
    limit: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """Evaluate ``job`` in chunks of ``chunk_size`` rows on ``engine``."""
    # Fail fast, before any engine starts: the model, then the loss, then the dataset.
    scorer = open_scorer(job.model, job.threads)
    try:
        classes = scorer.classes
        job.loss.check(classes)
    except BaseException:
        scorer.close()
        raise
    first = ChunkEvaluator(job, scorer)
    try:
        return _run(job, engine, first, classes, chunk_size, limit, progress)
    finally:
        first.close()


def _run(
    job: EvaluationJob,
    engine: Engine,
    first: ChunkEvaluator,
    classes: int,
    chunk_size: int,
    limit: int | None,
    progress: bool,
) -> Evaluation:
    from tqdm import tqdm

    dataset = first.dataset
    chunks = plan_chunks(dataset.segments(), chunk_size, limit)
    if not chunks:
        raise EvaluationError(f"{dataset.source} holds no images")
    rows = sum(stop - start for start, stop in chunks)
    started = time.perf_counter()
    total = Tally.zeros(classes)
    bar = tqdm(
        total=rows, unit=" images", unit_scale=True, disable=not progress, file=sys.stderr,
        desc=f"evaluating ({engine.name})", smoothing=0.1,
    )  # fmt: skip
    with bar:
        for tally in engine.run(job, chunks, bar.update, first):
            total = total + tally
    seconds = time.perf_counter() - started
    return Evaluation(
        tally=total,
        loss=job.loss,
        loss_value=job.loss.value(total),
        class_names=_class_names(first, classes),
        dataset={
            "name": dataset.name,
            "source": dataset.source,
            "split": job.dataset.split if dataset.name not in ("npz", "folder") else None,
            "images": total.total,
            "note": getattr(dataset, "note", ""),
        },
        model=job.model.describe(),
        run=engine.describe()
        | {
            "threads_per_worker": job.threads,
            "chunk_size": chunk_size,
            "chunks": len(chunks),
            "seconds": round(seconds, 3),
            "images_per_second": round(total.total / seconds, 1) if seconds else None,
        },
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror})") from None


def _where(settings: EvaluateSettings) -> str:
    """The dataset as workers elsewhere find it: an absolute path, CIFAR-10 found here, or the
    name of a generated dataset (written on each node)."""
    from training.data import DatasetError
    from training.datasets import CIFAR10, dataset_folder

    if settings.dataset == CIFAR10:
        try:
            return str(dataset_folder(CIFAR10).resolve())
        except DatasetError as exc:
            raise EvaluationError(str(exc)) from None
    path = Path(settings.dataset)
    return str(path.resolve()) if path.exists() else settings.dataset


def job_from_settings(settings: EvaluateSettings, cpus: int) -> tuple[EvaluationJob, Engine]:
    """The job and engine the settings describe (paths made absolute for remote workers)."""
    from service.evaluate.datasets import DatasetSpec

    if settings.server is not None:
        if settings.model is None:
            raise EvaluationError("--model is required with --server")
        model: Any = ServedModel(
            settings.server,
            settings.model,
            settings.version,
            settings.api_key.get_secret_value() if settings.api_key else None,
            _read(settings.tls_ca_file) if settings.tls_ca_file else None,
            settings.request_rows,
        )
    else:
        # Ray hides GPUs from actors that do not ask for one: there, cuda must be asked for.
        device = "cpu" if settings.engine == "ray" and settings.device == "auto" else None
        model = local_model(
            settings.model_repository, settings.model, settings.version,
            device or settings.device,
        )  # fmt: skip
    dataset = DatasetSpec(_where(settings), settings.split, str(settings.data_root.resolve()))
    loss = LossSpec(settings.loss, settings.reduction, settings.loss_options, settings.loss_input)
    engine: Engine
    if settings.engine == "ray":
        from service.evaluate.ray_engine import RayEngine

        engine = RayEngine(settings.ray_address, settings.workers, settings.ray_ship_code)
        threads = settings.threads or 1
    else:
        workers = settings.workers or 1
        engine = LocalEngine(workers)
        threads = settings.threads or max(1, cpus // workers)
    return EvaluationJob(dataset, model, loss, threads), engine
