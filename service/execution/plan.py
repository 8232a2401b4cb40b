"""How many processes and threads do the CPU work, so that together they fit the cores."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ThreadPlan", "plan_threads"]


@dataclass(frozen=True)
class ThreadPlan:
    """Per serving process: its model processes, each running onnxruntime with
    ``intra_op_threads`` threads, and ``executor_threads`` threads for decoding and loss math."""

    cpus: int
    workers: int
    model_processes: int
    intra_op_threads: int
    executor_threads: int


def plan_threads(
    *, cpus: int, workers: int, model_processes: int, intra_op_threads: int, executor_threads: int
) -> ThreadPlan:
    """Fill in the automatic (0) values. Each serving process keeps about one core for its event
    loop (gRPC and HTTP work per request); the rest of its share runs the models."""
    per_worker = max(1, cpus // workers)
    for_models = max(1, per_worker - 1)
    intra = intra_op_threads or max(1, for_models // model_processes)
    return ThreadPlan(cpus, workers, model_processes, intra, executor_threads or 1)
