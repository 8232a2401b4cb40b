"""The chunk function on a Ray cluster, through Ray Data (an optional extra: ``.[ray]``).

The dataset of the Ray job is the list of chunks (two integers each); ``map_batches`` sends them
to a pool of actors, each of which builds one :class:`ChunkEvaluator` (model loaded once per
actor) and returns each chunk's sums. Images never pass through the driver: each actor reads
its own rows, so the data must be readable where the actors run (see docs/evaluation.md).
When the job keeps outputs, each chunk's row also carries its rows' logits and labels (chunks
of different sizes: Ray returns those columns as one array per row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from service.cpus import usable_cpus
from service.evaluate.errors import EvaluationError
from service.evaluate.job import ChunkEvaluator, EvaluationJob
from service.evaluate.metrics import SUMS
from service.evaluate.outputs import ChunkOutputs, ChunkTally

__all__ = ["LOCAL_START_ATTEMPTS", "RayEngine"]

Chunk = tuple[int, int]
LOCAL_START_ATTEMPTS = 2
"""How many times a local Ray is started before the evaluation gives up."""

logger = logging.getLogger(__name__)


class RayChunks:
    """The Ray Data callable class: one :class:`ChunkEvaluator` per actor."""

    def __init__(self, job: EvaluationJob) -> None:
        self.evaluator = ChunkEvaluator(job)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One chunk (``batch_size=1``) in, one row out: its rows, its sums, its outputs."""
        (start,), (stop,) = batch["start"], batch["stop"]
        tally = self.evaluator(int(start), int(stop))
        row = {"chunk_rows": np.array([int(stop - start)])}
        row |= {k: v[None] for k, v in tally.to_arrays().items()}
        outputs = tally.outputs
        if outputs is not None:
            row |= {"first_row": np.array([outputs.start]), "logits": outputs.logits[None]}
            row |= {"labels": outputs.labels[None]}
        return row


class RayEngine:
    """Ray Data over a local Ray (started and stopped here) or the cluster at ``address``."""

    name = "ray"

    def __init__(
        self, address: str | None = None, actors: int | None = None, ship_code: bool = True
    ) -> None:
        self.address, self.actors, self.ship_code = address, actors, ship_code

    def describe(self) -> dict[str, object]:
        return {"engine": self.name, "address": self.address or "local", "actors": self.actors}

    def _init(self) -> Any:
        from service.evaluate.extras import require

        require("ray.data", "--engine ray", extra="ray")
        import ray

        runtime_env: dict[str, Any] = {"env_vars": {"ORT_DISABLE_TELEMETRY": "1"}}
        if self.address is not None and self.ship_code:
            import service
            import training

            # Ray uploads these packages to the cluster; their dependencies must be installed
            # on the workers (the image).
            runtime_env["py_modules"] = [service, training]
        self._start(ray, runtime_env)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # An actor's EvaluationError reaches the driver as itself, not as Ray's generic
        # "UDF failed" whose cause is lost on the way back.
        context.raise_original_map_exception = True
        return ray

    def _start(self, ray: Any, runtime_env: dict[str, Any]) -> None:
        """``ray.init``; a local Ray whose node does not register in time is started once more.

        Ray gives a starting node a fixed 30 s to register with its GCS (a bare ``Exception``
        past it) and its GCS a fixed time to write its port file (a ``RuntimeError``, "Timed
        out waiting for file"); on a loaded machine (or while the previous local Ray is still
        exiting) one more start usually succeeds. A bad argument is not retried, and joining a
        cluster is never retried.
        """
        where = self.address or "a local Ray"
        attempts = 1 if self.address else LOCAL_START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                ray.init(
                    address=self.address or "local",
                    num_cpus=None if self.address else usable_cpus(),
                    runtime_env=runtime_env,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
                return
            except Exception as exc:
                if isinstance(exc, ValueError) or (
                    self.address and isinstance(exc, (ConnectionError, RuntimeError))
                ):
                    raise EvaluationError(f"cannot start or join {where}: {exc}") from None
                ray.shutdown()
                if attempt == attempts:
                    raise EvaluationError(
                        f"cannot start or join {where} ({attempts} tries): {exc}"
                    ) from None
                logger.warning("%s did not start (%s); starting it once more", where, exc)

    def run(
        self,
        job: EvaluationJob,
        chunks: list[Chunk],
        advance: Callable[[int], None],
        first: ChunkEvaluator | None = None,
    ) -> Iterator[ChunkTally]:
        """Each chunk's tally as Ray returns it; ``advance(rows)`` after each."""
        del first  # actors open their own
        ray = self._init()
        try:
            items = [{"start": s, "stop": e} for s, e in chunks]
            results = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                RayChunks,
                fn_constructor_kwargs={"job": job},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(
                    size=self.actors or _cluster_cpus(ray, job.threads)
                ),
                num_cpus=job.threads,
                num_gpus=1 if getattr(job.model, "device", None) == "cuda" else None,
            )
            for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
                for row in range(len(batch["chunk_rows"])):
                    advance(int(batch["chunk_rows"][row]))
                    yield _chunk_tally(batch, row)
        except Exception as exc:
            cause = _user_error(exc)
            if cause is not None:
                raise cause from None
            raise
        finally:
            ray.shutdown()


def _chunk_tally(batch: dict[str, Any], row: int) -> ChunkTally:
    """Row ``row`` of a batch of results. Blocks of chunks of different sizes that Ray joins
    come back as object arrays of per-row arrays, hence ``np.asarray`` on each row."""
    tally = ChunkTally.from_arrays({k: batch[k][row] for k in SUMS})
    if "logits" not in batch:
        return tally
    outputs = ChunkOutputs(
        int(batch["first_row"][row]),
        np.asarray(batch["logits"][row], np.float32),
        np.asarray(batch["labels"][row], np.int64),
    )
    return replace(tally, outputs=outputs)


def _cluster_cpus(ray: Any, threads: int) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)


def _user_error(exc: BaseException) -> EvaluationError | None:
    """The :class:`EvaluationError` an actor raised, from inside Ray's wrapping exceptions
    (their ``cause``), with its own message rather than the remote traceback."""
    seen: BaseException | None = exc
    while seen is not None:
        cause = getattr(seen, "cause", None)
        if isinstance(cause, EvaluationError):
            return EvaluationError(*cause.args)
        if isinstance(seen, EvaluationError) and cause is None:
            return seen
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return None
