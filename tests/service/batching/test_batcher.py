"""The dynamic batcher on its own, with a stand-in model whose runs take a set time: full
batches, the wait window, error fan-out, large requests, cancellation and deadlines while
queued, ordering, queue-full rejection, closing, and batching turned off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from service.batching import BatchingOptions, DynamicBatcher, RunTimes
from service.errors import (
    DeadlineExceededError,
    InferenceFailedError,
    OverloadedError,
    UnavailableError,
)


class Observer:
    """Records what the batcher reports."""

    def __init__(self) -> None:
        self.depths: list[int] = []
        self.rejections = 0
        self.batches: list[tuple[int, list[float]]] = []
        self.runs: list[float] = []
        self.lone: list[bool] = []

    def queue_depth(self, waiting: int) -> None:
        self.depths.append(waiting)

    def rejected(self) -> None:
        self.rejections += 1

    def dispatched(self, waits: Sequence[float], rows: int, lone: bool) -> None:
        self.batches.append((rows, list(waits)))
        self.lone.append(lone)

    def finished(self, waits: Sequence[float], rows: int, times: RunTimes | None) -> None:
        if times is not None:
            self.runs.append(times.total)


class Model:
    """A stand-in model: a run over requests (strings) takes ``seconds`` and returns each
    request upper-cased, or raises when a request says ``fail``."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.runs: list[list[str]] = []

    def __call__(self, requests: list[str]) -> asyncio.Future[tuple[list[str], RunTimes]]:
        self.runs.append(list(requests))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[list[str], RunTimes]] = loop.create_future()

        def finish() -> None:
            if "fail" in requests:
                future.set_exception(RuntimeError("the model broke"))
            elif "short" in requests:
                future.set_result((["only one"], RunTimes(0.0, self.seconds, 0.0)))
            else:
                future.set_result(([r.upper() for r in requests], RunTimes(0.0, self.seconds, 0.0)))

        asyncio.get_running_loop().call_later(self.seconds, finish)
        return future


def batcher(
    model: Model, observer: Observer | None = None, slots: int = 1, **options: Any
) -> DynamicBatcher[str, str]:
    return DynamicBatcher(
        "test", model, slots, BatchingOptions.model_validate(options), observer or Observer()
    )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def test_a_full_batch_leaves_without_waiting_out_the_delay() -> None:
    async def scenario() -> None:
        model = Model()
        queue = batcher(model, max_batch_size=4, max_queue_delay_ms=5000)
        started = time.monotonic()
        results = await asyncio.gather(*(queue.submit(x, 1) for x in "abcd"))
        assert results == ["A", "B", "C", "D"]
        assert model.runs == [["a", "b", "c", "d"]]
        assert time.monotonic() - started < 1

    run(scenario)


def test_a_partial_batch_waits_for_the_delay_then_leaves() -> None:
    async def scenario() -> None:
        model, observer = Model(), Observer()
        queue = batcher(model, observer, max_batch_size=8, max_queue_delay_ms=150)
        started = time.monotonic()
        results = list(await asyncio.gather(queue.submit("a", 1), queue.submit("b", 1)))
        elapsed = time.monotonic() - started
        assert results == ["A", "B"]
        assert model.runs == [["a", "b"]]
        assert 0.14 <= elapsed < 1.0
        ((rows, waits),) = observer.batches
        assert rows == 2
        assert all(0.14 <= wait < 1.0 for wait in waits)

    run(scenario)


def test_without_a_delay_a_lone_request_runs_at_once() -> None:
    async def scenario() -> None:
        model = Model()
        queue = batcher(model, max_batch_size=32)
        started = time.monotonic()
        assert await queue.submit("a", 1) == "A"
        assert time.monotonic() - started < 0.05

    run(scenario)


def test_batches_form_while_the_model_is_busy() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.1)
        queue = batcher(model, max_batch_size=32)
        first = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0.02)  # the first run has started
        rest = [asyncio.ensure_future(queue.submit(x, 1)) for x in "bcdef"]
        assert await first == "A"
        assert await asyncio.gather(*rest) == ["B", "C", "D", "E", "F"]
        assert model.runs == [["a"], ["b", "c", "d", "e", "f"]]

    run(scenario)


def test_several_slots_run_batches_side_by_side() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.2)
        queue = batcher(model, slots=2, max_batch_size=1)
        started = time.monotonic()
        assert list(await asyncio.gather(queue.submit("a", 1), queue.submit("b", 1))) == ["A", "B"]
        assert time.monotonic() - started < 0.35
        assert model.runs == [["a"], ["b"]]

    run(scenario)


def test_a_failed_run_fails_only_its_batch(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        model = Model(seconds=0.05)
        queue = batcher(model, max_batch_size=2)
        blocker = asyncio.ensure_future(queue.submit("first", 1))
        await asyncio.sleep(0.01)
        failing = [asyncio.ensure_future(queue.submit(x, 1)) for x in ("fail", "x")]
        later = [asyncio.ensure_future(queue.submit(x, 1)) for x in "yz"]
        assert await blocker == "FIRST"
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(o, InferenceFailedError) for o in outcomes)
        assert str(outcomes[0]) == "inference failed"  # nothing of the cause reaches callers
        assert await asyncio.gather(*later) == ["Y", "Z"]
        assert model.runs == [["first"], ["fail", "x"], ["y", "z"]]

    with caplog.at_level(logging.ERROR):
        run(scenario)
    failures = [r for r in caplog.records if "inference failed" in r.getMessage()]
    assert len(failures) == 1
    assert "batch of 2 requests" in failures[0].getMessage()


def test_a_run_must_return_one_result_per_request() -> None:
    async def scenario() -> None:
        queue = batcher(Model(), max_batch_size=4, max_queue_delay_ms=50)
        outcomes = await asyncio.gather(
            queue.submit("short", 1), queue.submit("b", 1), return_exceptions=True
        )
        assert all(isinstance(o, InferenceFailedError) for o in outcomes)

    run(scenario)


def test_a_large_request_runs_alone_and_order_is_kept() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.05)
        queue = batcher(model, max_batch_size=4)
        blocker = asyncio.ensure_future(queue.submit("first", 1))
        await asyncio.sleep(0.01)
        sizes = {"a": 1, "b": 2, "big": 6, "c": 1, "d": 3, "e": 1}
        rest = [asyncio.ensure_future(queue.submit(x, n)) for x, n in sizes.items()]
        await blocker
        assert await asyncio.gather(*rest) == [x.upper() for x in sizes]
        assert model.runs == [["first"], ["a", "b"], ["big"], ["c", "d"], ["e"]]

    run(scenario)


def test_a_request_cancelled_while_queued_leaves_without_breaking_its_batch() -> None:
    async def scenario() -> None:
        model, observer = Model(seconds=0.1), Observer()
        queue = batcher(model, observer, max_batch_size=8)
        blocker = asyncio.ensure_future(queue.submit("first", 1))
        await asyncio.sleep(0.01)
        queued = {x: asyncio.ensure_future(queue.submit(x, 1)) for x in "abc"}
        await asyncio.sleep(0.01)
        assert queue.waiting == 3
        queued["b"].cancel()
        await asyncio.sleep(0)
        assert queue.waiting == 2
        await blocker
        assert await queued["a"] == "A"
        assert await queued["c"] == "C"
        assert model.runs == [["first"], ["a", "c"]]
        assert observer.depths[-1] == 0

    run(scenario)


def test_a_request_past_its_deadline_while_queued_never_runs() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.2)
        queue = batcher(model, max_batch_size=8)
        blocker = asyncio.ensure_future(queue.submit("first", 1))
        await asyncio.sleep(0.01)
        late = asyncio.ensure_future(queue.submit("late", 1, deadline=time.monotonic() + 0.05))
        patient = asyncio.ensure_future(queue.submit("patient", 1))
        with pytest.raises(DeadlineExceededError, match="deadline passed while queued"):
            await late
        assert queue.waiting == 1
        await blocker
        assert await patient == "PATIENT"
        assert model.runs == [["first"], ["patient"]]

    run(scenario)


def test_results_go_back_to_their_own_requests() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.01)
        queue = batcher(model, max_batch_size=5, max_queue_delay_ms=20)
        words = [f"w{i}" for i in range(23)]
        assert await asyncio.gather(*(queue.submit(w, 1) for w in words)) == [
            w.upper() for w in words
        ]
        assert [len(r) for r in model.runs] == [5, 5, 5, 5, 3]

    run(scenario)


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        model, observer = Model(seconds=0.2), Observer()
        queue = batcher(model, observer, max_batch_size=8, max_queue_size=2)
        blocker = asyncio.ensure_future(queue.submit("first", 1))
        await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(queue.submit(x, 1)) for x in "ab"]
        await asyncio.sleep(0)
        started = time.monotonic()
        with pytest.raises(OverloadedError, match="2 requests queued"):
            await queue.submit("c", 1)
        assert time.monotonic() - started < 0.05
        assert observer.rejections == 1
        await blocker
        assert await asyncio.gather(*queued) == ["A", "B"]
        assert await queue.submit("d", 1) == "D"  # room again once the queue drains

    run(scenario)


def test_closing_runs_what_is_queued_then_refuses() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.05)
        queue = batcher(model, max_batch_size=8, max_queue_delay_ms=10_000)
        queued = [asyncio.ensure_future(queue.submit(x, 1)) for x in "ab"]
        await asyncio.sleep(0.01)
        await queue.close()
        assert [q.result() for q in queued] == ["A", "B"]
        with pytest.raises(UnavailableError, match="shutting down"):
            await queue.submit("c", 1)

    run(scenario)


def test_batching_off_runs_each_request_alone() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.02)
        queue = batcher(model, batching=False, max_queue_delay_ms=1000)
        started = time.monotonic()
        assert await asyncio.gather(*(queue.submit(x, 1) for x in "abc")) == ["A", "B", "C"]
        assert model.runs == [["a"], ["b"], ["c"]]
        assert time.monotonic() - started < 0.5  # the delay does not apply either

    run(scenario)
