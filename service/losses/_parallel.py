"""Run a loss kernel over blocks of rows on a small thread pool.

Every kernel is row-independent and numpy releases the GIL inside its loops, so splitting
a large batch by rows scales with cores the way TensorFlow's intra-op thread pool does. Small
batches run inline: below :data:`MIN_ELEMENTS_PER_THREAD` the hand-off costs more than it saves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from service.cpus import usable_cpus
from service.losses._inputs import FloatArray, Labels, LossOutput

MIN_ELEMENTS_PER_THREAD = 1 << 17
"""Smallest block (in matrix elements) worth a thread of its own."""

Kernel = Callable[..., LossOutput]


def default_threads() -> int:
    """The number of CPUs this process may run on."""
    return usable_cpus()


@cache
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="loss")


def run_by_rows(
    kernel: Kernel, labels: Labels, x: FloatArray, threads: int, **arguments: Any
) -> LossOutput:
    """``kernel(labels, x, **arguments)``, computed on up to ``threads`` blocks of rows."""
    blocks = max(1, min(threads, x.size // MIN_ELEMENTS_PER_THREAD, x.shape[0]))
    if blocks == 1:
        return kernel(labels, x, **arguments)
    bounds = np.linspace(0, x.shape[0], blocks + 1).astype(int)
    pool = _executor(threads)
    futures = [
        pool.submit(kernel, labels.rows(start, stop), x[start:stop], **arguments)
        for start, stop in itertools.pairwise(bounds)
    ]
    outputs = [future.result() for future in futures]
    per_sample = np.concatenate([output.per_sample for output in outputs])
    gradients = [output.gradient for output in outputs]
    if any(gradient is None for gradient in gradients):
        return LossOutput(per_sample, None)
    return LossOutput(per_sample, np.concatenate(gradients))  # type: ignore[arg-type]
