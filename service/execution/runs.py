"""What a model process computes for one batch of calls — the logits of every call's images in
one model run, then each call's activation and top-k, so that post-processing also happens
once per batch and outside the serving process's event loop — and how a batch and its output
travel: plain metadata plus raw array buffers (pickling a numpy array costs ~30× its copy)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from service.activations import Activation, FloatArray
from service.batching import RunTimes
from service.repository import LoadedModel, ServedModel

__all__ = [
    "Batch",
    "BatchOutput",
    "Message",
    "ModelCall",
    "ModelOutput",
    "Postprocess",
    "RunTimes",
    "TopClass",
    "pack",
    "run_batch",
    "unpack",
]

Images = npt.NDArray[np.generic]
"""A pixel batch ``[N, H, W, C]`` of 0–255 values: uint8, or float32 checked to lie in range."""
Message = tuple[Any, list[npt.NDArray[Any]]]
"""What crosses the process boundary: small plain metadata, and numpy arrays sent raw."""


@dataclass(frozen=True)
class TopClass:
    """One of the k best classes of an image."""

    class_id: int
    label: str
    score: float


class Postprocess(NamedTuple):
    """What to compute from the logits."""

    activation: Activation
    temperature: float
    top_k: int

    def activate(self, logits: FloatArray) -> FloatArray | None:
        """The activated scores of ``logits`` (``None`` for ``none``)."""
        return self.activation.apply(logits, self.temperature)


@dataclass(slots=True)
class ModelCall:
    """One request's share of a model run."""

    images: Images
    postprocess: Postprocess | None
    """``None``: the logits alone."""


@dataclass(slots=True)
class ModelOutput:
    """What a call gets back."""

    logits: FloatArray
    scores: FloatArray | None
    top_k: list[list[TopClass]] | None


@dataclass(slots=True)
class Batch:
    """The calls of one model run: every call's images in one array."""

    images: Images
    sizes: list[int]
    postprocess: list[Postprocess | None]

    def to_message(self) -> Message:
        posts = [None if p is None else (p.activation.value, p.temperature, p.top_k)
                 for p in self.postprocess]  # fmt: skip
        return (self.sizes, posts), [self.images]

    @classmethod
    def from_message(cls, message: Message) -> Batch:
        (sizes, posts), (images,) = message
        return cls(images, sizes, [None if p is None else Postprocess(Activation(p[0]), *p[1:])
                                   for p in posts])  # fmt: skip


@dataclass(slots=True)
class BatchOutput:
    """What a model run gives back for a :class:`Batch`."""

    logits: FloatArray
    scores: FloatArray | None
    """Every row's activated scores (rows of calls without any: undefined), or ``None``."""
    scored: list[bool]
    """Per call: whether its rows of :attr:`scores` hold its scores."""
    top_k: list[list[list[tuple[int, str, float]]] | None]
    times: RunTimes

    def to_message(self) -> Message:
        arrays = [self.logits] if self.scores is None else [self.logits, self.scores]
        return (self.scored, self.top_k, tuple(self.times)), arrays

    @classmethod
    def from_message(cls, message: Message) -> BatchOutput:
        (scored, top_k, times), arrays = message
        scores = arrays[1] if len(arrays) > 1 else None
        return cls(arrays[0], scores, scored, top_k, RunTimes(*times))


def pack(calls: list[ModelCall]) -> Batch:
    """The calls of one batch, in order, as one :class:`Batch`."""
    images = calls[0].images if len(calls) == 1 else np.concatenate([c.images for c in calls])
    return Batch(images, [len(c.images) for c in calls], [c.postprocess for c in calls])


def _bounds(sizes: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(itertools.accumulate(sizes, initial=0)))


def _top_k(model: ServedModel, ranked: FloatArray, k: int) -> list[list[tuple[int, str, float]]]:
    best = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    return [
        [(int(c), model.class_names[c], float(row[c])) for c in classes]
        for row, classes in zip(ranked, best, strict=True)
    ]


def run_batch(model: LoadedModel, batch: Batch) -> BatchOutput:
    """Run ``model`` once over the batch's images and post-process each call's rows."""
    started = time.perf_counter()
    prepared = model.prepare(batch.images)
    converted = time.perf_counter()
    logits = model.run(prepared)
    ran = time.perf_counter()
    bounds = _bounds(batch.sizes)
    posts = batch.postprocess
    scores: FloatArray | None
    if all(post == posts[0] for post in posts):  # the usual case: one activation for all
        scores = None if posts[0] is None else posts[0].activate(logits)
        scored = [scores is not None] * len(posts)
    else:
        scores = np.empty_like(logits)
        scored = []
        for post, (start, stop) in zip(posts, bounds, strict=True):
            rows = None if post is None else post.activate(logits[start:stop])
            if rows is not None:
                scores[start:stop] = rows
            scored.append(rows is not None)
    top_k: list[list[list[tuple[int, str, float]]] | None] = []
    for post, (start, stop), has in zip(posts, bounds, scored, strict=True):
        if post is None or not post.top_k:
            top_k.append(None)
            continue
        ranked = scores[start:stop] if has and scores is not None else logits[start:stop]
        top_k.append(_top_k(model.spec, ranked, post.top_k))
    times = RunTimes(converted - started, ran - converted, time.perf_counter() - ran)
    return BatchOutput(logits, scores, scored, top_k, times)


def unpack(batch: Batch, output: BatchOutput) -> list[ModelOutput]:
    """Each call's share of a batch's output, in order."""
    outputs = []
    for index, (start, stop) in enumerate(_bounds(batch.sizes)):
        scores = (
            output.scores[start:stop]
            if output.scored[index] and output.scores is not None
            else None
        )
        ranked = output.top_k[index]
        top_k = None if ranked is None else [[TopClass(*t) for t in row] for row in ranked]
        outputs.append(ModelOutput(output.logits[start:stop], scores, top_k))
    return outputs
