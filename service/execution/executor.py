"""The executor the data plane owns: every piece of the service's CPU work runs here.

Model runs go to the model processes, one batch each at a time; decoding large requests and
loss math go to a small pool of threads in the serving process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from service.errors import UnavailableError
from service.execution.model_process import ModelProcess, ModelProcessConfig
from service.execution.plan import ThreadPlan
from service.execution.runs import BatchOutput, ModelCall, ModelOutput, pack, unpack
from service.repository import ServedModel

__all__ = ["Executor"]

P = ParamSpec("P")
T = TypeVar("T")


class Executor:
    """Model processes for model runs, threads for the rest (see the module docstring)."""

    def __init__(self, processes: list[ModelProcess], threads: int) -> None:
        self._processes = processes
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cpu")

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
        self, key: tuple[str, int], calls: list[ModelCall]
    ) -> asyncio.Future[tuple[list[ModelOutput], float]]:
        """Run one batch of ``calls`` on an idle model process (callers keep at most
        :attr:`slots` in flight); each call's output, and the run's seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[list[ModelOutput], float]] = loop.create_future()
        process = next((p for p in self._processes if p.idle), None)
        if process is None:
            future.set_exception(UnavailableError("no model process is available"))
            return future
        batch = pack(calls)

        def done(run: asyncio.Future[tuple[BatchOutput, float]]) -> None:
            if run.exception() is not None:
                future.set_exception(run.exception())  # type: ignore[arg-type]
            else:
                output, seconds = run.result()
                future.set_result((unpack(batch, output), seconds))

        process.run(key, batch).add_done_callback(done)
        return future

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a thread, awaited without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def stop(self) -> None:
        """Stop the model processes (each after its running batch) and the threads."""
        await asyncio.gather(*(process.stop() for process in self._processes))
        self._pool.shutdown(wait=True)
