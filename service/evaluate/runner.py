"""One evaluation: plan the chunks, run them on an engine, add up their tallies (and keep the
rows' outputs when the job asks for them)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from service.evaluate.errors import EvaluationError
from service.evaluate.job import ChunkEvaluator, EvaluationJob, LossSpec, plan_chunks
from service.evaluate.metrics import Tally
from service.evaluate.models import open_scorer
from service.evaluate.outputs import ChunkOutputs, ChunkTally

__all__ = ["Engine", "Evaluation", "evaluate"]


class Engine(Protocol):
    name: str

    def describe(self) -> dict[str, object]: ...

    def run(
        self,
        job: EvaluationJob,
        chunks: list[tuple[int, int]],
        advance: Callable[[int], None],
        first: ChunkEvaluator | None = None,
    ) -> Iterator[Tally]:
        """Each chunk's :class:`Tally` (a :class:`ChunkTally` with its outputs when the job
        keeps them), in any order; ``advance(rows)`` after each."""
        ...


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
    outputs: tuple[ChunkOutputs, ...] = ()
    """Each chunk's rows' raw logits and labels, in row order (only when the job keeps
    outputs)."""


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
    dataset = first.dataset
    chunks = plan_chunks(dataset.segments(), chunk_size, limit)
    if not chunks:
        raise EvaluationError(f"{dataset.source} holds no images")
    rows = sum(stop - start for start, stop in chunks)
    if job.keep_outputs:
        _check_split(job, chunks)
    started = time.perf_counter()
    total = Tally.zeros(classes)
    kept: list[ChunkOutputs] = []
    with _progress_bar(rows, f"evaluating ({engine.name})", progress) as bar:
        for tally in engine.run(job, chunks, bar.update, first):
            total = total + tally
            if isinstance(tally, ChunkTally) and tally.outputs is not None:
                kept.append(tally.outputs)
    if job.keep_outputs and sum(len(o.labels) for o in kept) != rows:
        raise EvaluationError(f"{engine.name} engine returned the outputs of some rows only")
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
        model=job.model.describe()
        | {
            "calibration_temperature": job.temperature,
            "calibration_note": job.temperature_note or None,
        },
        run=engine.describe()
        | {
            "threads_per_worker": job.threads,
            "chunk_size": chunk_size,
            "chunks": len(chunks),
            "seconds": round(seconds, 3),
            "images_per_second": round(total.total / seconds, 1) if seconds else None,
        },
        outputs=tuple(sorted(kept, key=lambda outputs: outputs.start)),
    )


def _check_split(job: EvaluationJob, chunks: list[tuple[int, int]]) -> None:
    """Before any work: both sides of the calibration split must have rows."""
    split = job.calibration_split
    fit, measure = split.count(chunks)
    if not fit or not measure:
        raise EvaluationError(
            f"--calibration-split {split.fraction:g} (--split-seed {split.seed}) leaves "
            f"{fit} row(s) to fit the temperature on and {measure} to measure it on; both need "
            "rows (more rows, or another split)"
        )


class _Quiet:
    """What stands for the progress bar with ``--no-progress`` (tqdm is not needed then)."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, rows: int) -> None:
        """Rows done (ignored)."""


def _progress_bar(rows: int, description: str, progress: bool) -> Any:
    """A tqdm bar on stderr with images/s, or a silent stand-in."""
    if not progress:
        return _Quiet()
    from service.evaluate.extras import require

    tqdm = require("tqdm", "the progress bar", instead="--no-progress").tqdm
    return tqdm(
        total=rows, unit=" images", unit_scale=True, file=sys.stderr, desc=description,
        smoothing=0.1,
    )  # fmt: skip
