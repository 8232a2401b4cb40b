"""The chunk function every engine runs: rows ``start..stop`` in, a :class:`Tally` out (with
the rows' logits and labels when the job keeps outputs).

An :class:`EvaluationJob` is plain, picklable data (dataset name, model, loss); a
:class:`ChunkEvaluator` built from it in a worker opens the model and the dataset once and then
evaluates any number of chunks. The local engine's threads and Ray's actors run the same class.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from service.activations import Activation
from service.errors import InvalidInputError
from service.evaluate.datasets import (
    READ_ERRORS,
    Dataset,
    DatasetSpec,
    check_labels,
)
from service.evaluate.errors import EvaluationError
from service.evaluate.files import open_dataset
from service.evaluate.metrics import Tally
from service.evaluate.models import ModelSpec, Scorer, open_scorer
from service.evaluate.outputs import ChunkOutputs, ChunkTally, RowSplit
from service.losses import compute_loss
from training.data import DatasetError

__all__ = ["ChunkEvaluator", "EvaluationJob", "LossSpec", "plan_chunks"]

LossInput = Literal["logits", "softmax", "sigmoid"]
RESERVED = {
    "labels", "logits", "probabilities", "reduction", "sample_weight", "return_gradient",
    "threads",
}  # fmt: skip
"""compute_loss arguments that are not the loss's own options."""


@dataclass(frozen=True)
class LossSpec:
    """A loss of the registry with its options, as ``compute_loss`` takes them."""

    name: str = "sparse_categorical_crossentropy"
    reduction: str = "sum_over_batch_size"
    options: dict[str, Any] = field(default_factory=dict)
    input: LossInput = "logits"
    """What the loss is computed from: the logits, or probabilities after this activation."""

    def per_row(self, logits: Any, labels: Any, threads: int = 1, temperature: float = 1.0) -> Any:
        """Each row's loss (of ``logits / temperature``); rows an ``ignore_class`` drops count 0."""
        if self.input == "logits":
            scaled = logits if temperature == 1 else logits / np.float32(temperature)
            predictions = {"logits": scaled}
        else:
            predictions = {"probabilities": Activation(self.input).apply(logits, temperature)}
        result = compute_loss(
            self.name, labels, reduction="sum", threads=threads, **predictions, **self.options
        )
        return result.per_sample

    def counted(self, labels: Any) -> Any:
        """Which rows the loss counts: all but those labelled ``ignore_class``."""
        ignored = self.options.get("ignore_class")
        return np.ones(len(labels), bool) if ignored is None else labels != ignored

    def value(self, tally: Tally) -> float:
        """The dataset's loss under this reduction, from the sums: what one ``compute_loss``
        over every row gives (without sample weights, every mean divides by the rows counted)."""
        total = float(tally.loss_sum.sum())
        if self.reduction == "sum":
            return total
        rows = int(tally.loss_rows.sum())
        return total / rows if rows else 0.0

    def check(self, classes: int) -> None:
        """Fail before any work when the name, reduction or options are wrong."""
        taken = sorted(RESERVED & set(self.options))
        if taken:
            raise EvaluationError(
                f"loss: {', '.join(map(repr, taken))} cannot be a loss option (labels and "
                "predictions come from the dataset and the model; the reduction is --reduction; "
                "datasets carry no sample weights)"
            )
        if self.reduction == "none":
            raise EvaluationError(
                "reduction 'none' gives one loss per image; a report needs one number (use "
                "sum or sum_over_batch_size; per-class losses are reported as well)"
            )
        try:
            self.per_row(np.zeros((1, classes), np.float32), np.zeros(1, np.int64))
            compute_loss(self.name, [0], logits=[[0.0] * classes], reduction=self.reduction)
        except InvalidInputError as exc:
            raise EvaluationError(f"loss: {exc.message}") from None


@dataclass(frozen=True)
class EvaluationJob:
    """Everything a worker needs: what to read, what to score it with, which loss."""

    dataset: DatasetSpec
    model: ModelSpec
    loss: LossSpec
    threads: int = 1
    """onnxruntime threads per model run in each worker."""
    temperature: float = 1.0
    """Losses and metrics are of ``logits / temperature`` (a version's served calibration)."""
    temperature_note: str = ""
    """Where the temperature comes from, or why a calibration file is not applied (report)."""
    keep_outputs: bool = False
    """Hand back each row's raw logits and label (memory: rows × classes × 4 bytes in the
    driver), for fitting a temperature."""
    calibration_split: RowSplit = field(default_factory=RowSplit)
    """Which rows a temperature is fitted on and which measure it."""


class ChunkEvaluator:
    """Opens the job's model and dataset once; ``evaluator(start, stop)`` tallies those rows."""

    def __init__(self, job: EvaluationJob, scorer: Scorer | None = None) -> None:
        self.job = job
        self.scorer: Scorer = scorer or open_scorer(job.model, job.threads)
        try:
            self.dataset: Dataset = open_dataset(
                job.dataset, self.scorer.class_names or (), self.scorer.image_shape
            )
        except BaseException:
            self.scorer.close()
            raise

    def close(self) -> None:
        """Release the model's connection and the dataset's files."""
        self.scorer.close()
        self.dataset.close()

    def __call__(self, start: int, stop: int) -> ChunkTally:
        try:
            images, labels = self.dataset.read(start, stop)
        except DatasetError as exc:
            raise EvaluationError(str(exc)) from None
        except READ_ERRORS as exc:
            raise EvaluationError(
                f"{self.dataset.source}: rows {start}..{stop} cannot be read "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if images.shape[1:] != tuple(self.scorer.image_shape):
            raise EvaluationError(
                f"{self.dataset.source}: images are {list(images.shape[1:])}, the model takes "
                f"{list(self.scorer.image_shape)} (height, width, channels)"
            )
        logits = self.scorer.logits(images)
        check_labels(labels, logits.shape[1], self.dataset.source, start)
        job, temperature = self.job, self.job.temperature
        losses = job.loss.per_row(logits, labels, job.threads, temperature)
        counted = job.loss.counted(labels)
        tally = ChunkTally.of(logits, labels, losses, counted, temperature=temperature)
        if not job.keep_outputs:
            return tally
        return replace(tally, outputs=ChunkOutputs(start, logits, labels))


def plan_chunks(
    segments: list[tuple[int, int]], chunk_size: int, limit: int | None = None
) -> list[tuple[int, int]]:
    """Row ranges of at most ``chunk_size`` rows, none crossing a segment, covering the first
    ``limit`` rows (all when ``None``)."""
    chunks: list[tuple[int, int]] = []
    for first, last in segments:
        if limit is not None:
            last = min(last, limit)
        chunks.extend((s, min(s + chunk_size, last)) for s in range(first, last, chunk_size))
    return chunks
