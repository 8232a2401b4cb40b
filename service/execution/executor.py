"""The executor the data plane owns: every piece of the service's CPU work runs here.

Model runs go to the model processes, one batch each at a time, except a lone run, which the
serving process does itself on its own copy of the model (:mod:`service.execution.lone`);
decoding large requests and loss math go to a small pool of threads in the serving process.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from service.batching import RunTimes
from service.errors import ModelLoadError, UnavailableError
from service.execution.lone import LONE_ROWS, LoneModels
from service.execution.model_process import LoadOrder, ModelProcess, ModelProcessConfig
from service.execution.plan import ThreadPlan
from service.execution.runs import (
    Batch,
    BatchOutput,
    ModelCall,
    ModelOutput,
    pack,
    run_batch,
    unpack,
)
from service.repository import ServedModel
from service.repository._runtime import CPU, providers_for

__all__ = ["Executor"]

P = ParamSpec("P")
T = TypeVar("T")
BatchResult = tuple[list[ModelOutput], RunTimes]
"""Each call's output, and where the run's time went."""


class Executor:
    """Model processes for model runs, threads for the rest (see the module docstring)."""

    def __init__(
        self, processes: list[ModelProcess], threads: int, lone: LoneModels | None = None
    ) -> None:
        self._processes = processes
        self._lone = lone
        self._waiting: deque[tuple[int, list[ModelCall], asyncio.Future[BatchResult]]] = deque()
        """Runs waiting for an idle process: the batchers of several versions share them."""
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cpu")

    @classmethod
    async def start(
        cls, config: ModelProcessConfig, plan: ThreadPlan, *, lone_runs: bool = True
    ) -> Executor:
        """Start the model processes (empty: :meth:`load` gives them models), with a copy of
        each model in this process for lone runs when ``lone_runs`` and the models run on the
        CPU (none beside a GPU's session). Raises :class:`~service.errors.ModelLoadError` if any
        process cannot start."""
        processes = [ModelProcess(config) for _ in range(plan.model_processes)]
        try:
            await asyncio.gather(*(process.start() for process in processes))
        except BaseException:
            await asyncio.gather(*(process.stop() for process in processes))
            raise
        on_cpu = providers_for(config.device)[0] == CPU  # the processes started: it resolves
        lone = LoneModels() if lone_runs and on_cpu else None
        return cls(processes, plan.executor_threads, lone)

    @property
    def slots(self) -> int:
        """How many model runs can be in flight at once."""
        return len(self._processes)

    @property
    def pids(self) -> list[int]:
        """The model processes' pids."""
        return [p.pid for p in self._processes if p.pid is not None]

    def on_model_process_exit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if a model process dies while the service runs."""
        for process in self._processes:
            process.on_exit = callback

    async def load(self, order: LoadOrder) -> ServedModel:
        """Load ``order`` in every model process, and its copy for lone runs at the same time;
        its spec. If any process cannot, the others drop it again and
        :class:`~service.errors.ModelLoadError` says why."""
        copy = [] if self._lone is None else [self.run(self._lone.load, order)]
        outcomes = await asyncio.gather(
            *(process.load(order) for process in self._processes), *copy, return_exceptions=True
        )
        outcomes = outcomes[: len(self._processes)]  # the copy's load reports its own failure
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await self.unload(order.instance)
            if isinstance(failures[0], ModelLoadError):
                raise failures[0]
            raise ModelLoadError(f"{order.path}: {failures[0]}") from failures[0]
        spec = outcomes[0]
        assert isinstance(spec, ServedModel)
        return spec

    async def unload(self, instance: int) -> None:
        """Drop ``instance`` from every model process (none of its batches may be running)."""
        if self._lone is not None:
            self._lone.unload(instance)
        await asyncio.gather(
            *(process.unload(instance) for process in self._processes), return_exceptions=True
        )

    def run_batch(self, instance: int, calls: list[ModelCall]) -> asyncio.Future[BatchResult]:
        """Run one batch of ``calls`` on the next idle model process (the batchers of every
        model and version share them, so a run may wait for one); each call's output, and
        where the run's time went."""
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((instance, calls, future))
        self._dispatch()
        return future

    def run_lone(self, instance: int, calls: list[ModelCall]) -> asyncio.Future[BatchResult] | None:
        """Run ``calls`` at once on this process's copy of the model, if they are a lone run
        (one call of at most :data:`LONE_ROWS` rows, while no model process has a run and none
        waits); its finished future, or ``None`` if they are not (or there is no copy)."""
        if (
            self._lone is None
            or len(calls) != 1
            or len(calls[0].images) > LONE_ROWS
            or self._waiting
            or not all(p.idle for p in self._processes)
        ):
            return None
        model = self._lone.get(instance)
        if model is None:
            return None
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        batch = pack(calls)
        try:
            output = run_batch(model, batch)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result((unpack(batch, output), output.times))
        return future

    def _dispatch(self) -> None:
        """Start waiting runs on idle processes, in order."""
        while self._waiting:
            process = next((p for p in self._processes if p.idle), None)
            if process is None:
                if all(p.exited for p in self._processes):
                    for _, _, waiting in self._waiting:
                        if not waiting.done():
                            waiting.set_exception(UnavailableError("no model process is available"))
                    self._waiting.clear()
                return
            instance, calls, future = self._waiting.popleft()
            if future.done():
                continue
            try:
                batch = pack(calls)
                running = process.run(instance, batch)
            except Exception as exc:
                future.set_exception(exc)
                continue
            running.add_done_callback(partial(self._finished, batch, future))

    def _finished(
        self, batch: Batch, future: asyncio.Future[BatchResult], run: asyncio.Future[BatchOutput]
    ) -> None:
        try:
            if not future.done():
                output = run.result()  # raises the run's error
                future.set_result((unpack(batch, output), output.times))
        except Exception as exc:
            future.set_exception(exc)
        finally:
            self._dispatch()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a thread, awaited without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def stop(self) -> None:
        """Stop the model processes (each after its running batch) and the threads."""
        await asyncio.gather(*(process.stop() for process in self._processes))
        self._pool.shutdown(wait=True)
