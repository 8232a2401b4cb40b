"""Lone runs: a copy of each model in the serving process, for a request that is alone.

A model process exists so that model runs and the event loop do not fight over the GIL under
load (see :mod:`service.execution.model_process`). When one small request is all there is to
do, there is no one to fight: the hop to a model process and back (two socket messages and the
wake-up of an idle core) is then most of what the service adds to the model's own time. Such a
run happens on the event loop itself, on this copy (one onnxruntime thread), which blocks the
loop for about one model run. The batcher decides when a request is alone
(:class:`service.batching.DynamicBatcher`), the executor whether the models are idle
(:meth:`service.execution.Executor.run_lone`); docs/service.md has the measurements.
"""

from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from service.execution.model_process import LoadOrder
from service.repository import LoadedModel

__all__ = ["LONE_BUDGET_SECONDS", "LONE_ROWS", "LoneModels"]

log = logging.getLogger(__name__)

LONE_ROWS = 1
"""Most rows a lone run may hold: one image takes about as long as the hop it saves."""
LONE_BUDGET_SECONDS = 0.002
"""A model whose one-image run takes longer keeps no copy: a lone run blocks the event loop
(both transports) for that long, and the hop (~0.5 ms) would be a small part of it."""


class LoneModels:
    """The serving process's own copies of the loaded models, one onnxruntime thread each."""

    def __init__(self) -> None:
        from service.repository._runtime import CPU, session_options

        self._providers = [CPU]
        self._options = session_options(1)
        self._models: dict[int, LoadedModel] = {}

    def load(self, order: LoadOrder) -> None:
        """Load ``order``'s model and time its one-image run (blocking: call it on a thread).
        Without a copy (a failure, or a run over :data:`LONE_BUDGET_SECONDS`) this version's
        lone requests take the hop like the others."""
        from service.repository import load_model

        try:
            model = load_model(
                order.name, order.version, order.path, self._providers, self._options,
                order.batching, announce=False,
            )  # fmt: skip
            image = np.zeros((1, *model.spec.image_shape), np.uint8)
            seconds = statistics.median(_timed(model, image) for _ in range(5))
        except Exception:
            log.warning(
                "model %s version %d: no copy in the serving process; lone requests take "
                "the hop to a model process", order.name, order.version, exc_info=True,
            )  # fmt: skip
            return
        if seconds > LONE_BUDGET_SECONDS:
            log.info(
                "model %s version %d: one image takes %.1f ms, over the %.0f ms a lone run may "
                "hold the event loop; lone requests take the hop to a model process",
                order.name, order.version, seconds * 1e3, LONE_BUDGET_SECONDS * 1e3,
            )  # fmt: skip
            return
        self._models[order.instance] = model
        log.debug(
            "model %s version %d: a copy for lone runs (%.2f ms an image)",
            order.name, order.version, seconds * 1e3,
        )  # fmt: skip

    def unload(self, instance: int) -> None:
        """Drop ``instance``'s copy."""
        self._models.pop(instance, None)

    def get(self, instance: int) -> LoadedModel | None:
        """``instance``'s copy, if there is one."""
        return self._models.get(instance)


def _timed(model: LoadedModel, image: np.ndarray) -> float:
    started = time.perf_counter()
    model.infer(image)
    return time.perf_counter() - started
