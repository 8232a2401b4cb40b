"""What a model process computes for one batch of calls: the logits of every call's images in
one model run, then each call's activation and top-k, so that post-processing also happens
once per batch and outside the serving process's event loop."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.activations import Activation
from service.repository import LoadedModel, ServedModel

__all__ = ["ModelCall", "ModelOutput", "Postprocess", "TopClass", "run_calls"]

FloatArray = npt.NDArray[np.float32]
Images = npt.NDArray[np.generic]


@dataclass(frozen=True)
class TopClass:
    """One of the k best classes of an image."""

    class_id: int
    label: str
    score: float


class Postprocess(NamedTuple):
    """What to compute from the logits (plain values: cheap to send to a model process)."""

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


def _top_k(model: ServedModel, ranked: FloatArray, k: int) -> list[list[TopClass]]:
    best = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    return [
        [TopClass(int(c), model.class_names[c], float(row[c])) for c in classes]
        for row, classes in zip(ranked, best, strict=True)
    ]


def run_calls(model: LoadedModel, calls: list[ModelCall]) -> list[ModelOutput]:
    """Run ``model`` once over every call's images (in order) and post-process each call."""
    logits = model.infer_parts([call.images for call in calls])
    bounds = list(itertools.accumulate((len(call.images) for call in calls), initial=0))
    first = calls[0].postprocess
    shared_scores = None
    if first is not None and all(call.postprocess == first for call in calls[1:]):
        shared_scores = first.activate(logits)  # the usual case: one activation for the batch
    outputs = []
    for call, start, stop in zip(calls, bounds, bounds[1:], strict=False):
        rows = logits[start:stop]
        post = call.postprocess
        if post is None:
            outputs.append(ModelOutput(rows, None, None))
            continue
        scores = post.activate(rows) if shared_scores is None else shared_scores[start:stop]
        top_k = None
        if post.top_k:
            top_k = _top_k(model.spec, rows if scores is None else scores, post.top_k)
        outputs.append(ModelOutput(rows, scores, top_k))
    return outputs
