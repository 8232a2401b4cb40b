"""The default engine: the chunk function on this machine's cores, a few chunks in flight.

Each worker thread opens its own :class:`ChunkEvaluator` (model session and dataset reader);
onnxruntime and image decoding release the GIL, so threads use the cores. At most two chunks
per worker are read or running at once, which bounds memory whatever the dataset's size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from service.evaluate.job import ChunkEvaluator, EvaluationJob
from service.evaluate.outputs import ChunkTally

__all__ = ["LocalEngine"]

Chunk = tuple[int, int]


class LocalEngine:
    """``workers`` threads in this process, each with its own model session."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def describe(self) -> dict[str, object]:
        return {"engine": self.name, "workers": self.workers}

    def run(
        self,
        job: EvaluationJob,
        chunks: list[Chunk],
        advance: Callable[[int], None],
        first: ChunkEvaluator | None = None,
    ) -> Iterator[ChunkTally]:
        """Each chunk's tally as it completes (in any order); ``advance(rows)`` after each.
        ``first``: an evaluator already open, used by one of the threads."""
        spare = [first] if first is not None else []
        opened: list[ChunkEvaluator] = []  # by the threads; ``first`` is the caller's
        local = threading.local()
        lock = threading.Lock()

        def evaluate(chunk: Chunk) -> ChunkTally:
            evaluator = getattr(local, "evaluator", None)
            if evaluator is None:
                with lock:
                    evaluator = spare.pop() if spare else None
                if evaluator is None:
                    evaluator = ChunkEvaluator(job)
                    with lock:
                        opened.append(evaluator)
                local.evaluator = evaluator
            return evaluator(*chunk)

        pending = iter(chunks)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="evaluate") as pool:
            running: dict[Future[ChunkTally], Chunk] = {}
            try:
                while True:
                    while len(running) < 2 * self.workers:
                        chunk = next(pending, None)
                        if chunk is None:
                            break
                        running[pool.submit(evaluate, chunk)] = chunk
                    if not running:
                        return
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        start, stop = running.pop(future)
                        tally = future.result()
                        advance(stop - start)
                        yield tally
            finally:
                for future in running:
                    future.cancel()
                wait(running)
                for evaluator in opened:
                    evaluator.close()
