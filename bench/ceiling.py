"""The ceiling: onnxruntime in-process on the same file, no server in the way."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench._timing import median_ms
from service.activations import softmax

__all__ = ["Ceiling", "measure_ceiling"]

BATCHES = (1, 8, 16, 32, 64)


@dataclass(frozen=True)
class Ceiling:
    images_per_second: dict[int, float]
    """By batch size: logits plus softmax, onnxruntime's default threads (all cores)."""
    batch1_ms: float
    """Median time of one image."""

    @property
    def best_batch(self) -> int:
        return max(self.images_per_second, key=self.images_per_second.__getitem__)

    @property
    def best_images_per_second(self) -> float:
        return self.images_per_second[self.best_batch]


def measure_ceiling(model_file: Path, seconds: float = 2.0) -> Ceiling:
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rates = {}
    for batch in BATCHES:
        images = np.random.default_rng(0).uniform(0, 255, (batch, 32, 32, 3)).astype(np.float32)
        softmax(session.run(None, {name: images})[0])
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            softmax(session.run(None, {name: images})[0])
            runs += 1
        rates[batch] = runs * batch / (time.perf_counter() - started)
    one = np.zeros((1, 32, 32, 3), np.float32)
    return Ceiling(rates, median_ms(lambda: softmax(session.run(None, {name: one})[0]), 500))
