"""The executor the data plane owns: every piece of the service's CPU work runs here.

Model runs go to the model processes, one batch each at a time; decoding large requests and
loss math go to a small pool of threads in the serving process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from service.execution.model_process import ModelProcess, ModelProcessConfig, Outputs
from service.execution.plan import ThreadPlan
from service.repository import ServedModel

__all__ = ["Executor"]

P = ParamSpec("P")
T = TypeVar("T")


class Executor:
    """Model processes for model runs, threads for the rest (see the module docstring)."""

    def __init__(self, processes: list[ModelProcess], threads: int) -> None:
        self._processes = processes
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cpu")
        self.threads = threads

    @classmethod
    async def start(
        cls, config: ModelProcessConfig, plan: ThreadPlan
    ) -> tuple[Executor, list[ServedModel]]:
        """Start the model processes; the executor and the specs of the models they serve.
        Raises :class:`~service.errors.ModelLoadError` if any process cannot load them."""
        processes = [ModelProcess(config) for _ in range(plan.model_processes)]
        try:
            specs = await asyncio.gather(*(process.start() for process in processes))
        except BaseException:
            await asyncio.gather(*(process.stop() for process in processes))
            raise
        return cls(processes, plan.executor_threads), specs[0]

    @property
    def slots(self) -> int:
        """How many model runs can be in flight at once."""
        return len(self._processes)

    def on_model_process_exit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if a model process dies while the service runs."""
        for process in self._processes:
            process.on_exit = callback

    def run_batch(
        self, key: tuple[str, int], calls: list[Any]
    ) -> asyncio.Future[tuple[Outputs, float]]:
        """Run one batch on an idle model process (callers keep at most :attr:`slots` in
        flight); the outputs and the run's seconds."""
        process = next((p for p in self._processes if p.idle), None)
        if process is None:
            future: asyncio.Future[tuple[Outputs, float]] = (
                asyncio.get_running_loop().create_future()
            )
            future.set_exception(RuntimeError("no model process is available"))
            return future
        return process.run(key, calls)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a thread, awaited without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def stop(self) -> None:
        """Stop the model processes (each after its running batch) and the threads."""
        await asyncio.gather(*(process.stop() for process in self._processes))
        self._pool.shutdown(wait=True)
