"""A per-model dynamic batcher: concurrent requests coalesced into one model run.

Requests wait in a bounded FIFO queue. A batch leaves when a run slot is free and either the queue
holds a full batch of rows, or the oldest request has waited ``max_queue_delay``, or the batcher is
closing. With no delay (the default) a request waits for no timer: a batch that is not full and
whose oldest request came in on one of the ``gather_lanes`` leaves at the end of the event-loop
turn in which it could first leave, so that requests ready in the same turn join it; batches also
form from what queues up while every slot is busy. A request alone in the batcher may instead *run
lone* (``run_lone``: where it is, without the hop to a model process), at the end of that turn, and
only if no request arrived while another was queued or running for :data:`LONE_QUIET_SECONDS`
(under concurrency, requests that look alone between batches go on to the model processes). A
request larger than the batch size runs alone; order is kept. The design answers the peers' known
bugs: the wait window is measured from the oldest request's arrival (not shortened cumulatively), a
cancelled or expired request leaves the queue without touching its neighbours, a full queue refuses
at once instead of blocking, a run must return one result per request, and a failed run fails only
its own batch. Each request names its *lane* (the transport it came in on): when several lanes are
active, each keeps a fair share of the queue (:mod:`service.batching.lanes`), so that one
transport's flood cannot shut another out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Container
from functools import partial
from typing import Generic, TypeVar

from service.batching.config import BatchingOptions
from service.batching.lanes import DEFAULT_LANE, LaneShares
from service.batching.observer import BatchObserver, RunTimes
from service.errors import (
    DeadlineExceededError,
    InferenceFailedError,
    OverloadedError,
    UnavailableError,
)

__all__ = ["DynamicBatcher", "RunBatch"]

log = logging.getLogger(__name__)

LONE_QUIET_SECONDS = 1.0
"""A request may run lone only if no two requests were in the batcher at once for this long."""

Request = TypeVar("Request")
Result = TypeVar("Result")


class _Item(Generic[Request, Result]):
    __slots__ = ("deadline_timer", "enqueued", "future", "lane", "request", "rows", "waited")

    def __init__(
        self,
        request: Request,
        rows: int,
        future: asyncio.Future[Result],
        enqueued: float,
        lane: str,
    ) -> None:
        self.request, self.rows, self.future, self.enqueued = request, rows, future, enqueued
        self.lane = lane
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.waited = 0.0


RunBatch = Callable[[list[Request]], "asyncio.Future[tuple[list[Result], RunTimes]]"]
"""Starts a model run on the requests of one batch, in order; its future gives one result per
request and where the run's time went."""
RunLone = Callable[[list[Request]], "asyncio.Future[tuple[list[Result], RunTimes]] | None"]
"""Runs a lone request at once where it is (its finished future), or declines (``None``)."""


class DynamicBatcher(Generic[Request, Result]):
    """Queue and batch the requests of one model version; see the module docstring.

    At most ``slots`` batches run at once (one per model process).
    """

    def __init__(
        self,
        name: str,
        run: RunBatch[Request, Result],
        slots: int,
        options: BatchingOptions,
        observer: BatchObserver,
        run_lone: RunLone[Request, Result] | None = None,
        gather_lanes: Container[str] | None = None,
    ) -> None:
        self.name = name
        self._gather_lanes = gather_lanes
        """Lanes whose batches wait for the end of the loop turn (``None``: every lane)."""
        self._run = run
        self._run_lone = run_lone
        self._turn: asyncio.Handle | None = None
        self._overlapped = -LONE_QUIET_SECONDS
        """When a request last arrived while another was queued or running (monotonic s)."""
        self._max_rows = options.max_batch_size if options.batching else 0
        self._delay = options.max_queue_delay_ms / 1000 if options.batching else 0.0
        self._lanes = LaneShares(options.max_queue_size)
        self._slots = slots
        self._observer = observer
        self._queue: deque[_Item[Request, Result]] = deque()
        self._waiting = 0  # live requests in the queue (cancelled ones may still sit in it)
        self._waiting_rows = 0
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._closing = False
        self._idle: asyncio.Event | None = None
        self.last_submit = time.monotonic()
        """When a request last arrived (``time.monotonic()``): retirement waits for quiet."""

    @property
    def waiting(self) -> int:
        """Requests queued and not yet in a model run."""
        return self._waiting

    @property
    def closing(self) -> bool:
        """:meth:`close` was called: new requests are refused."""
        return self._closing

    async def submit(
        self,
        request: Request,
        rows: int,
        *,
        lane: str = DEFAULT_LANE,
        deadline: float | None = None,
    ) -> Result:
        """The result of ``request`` (``rows`` rows), computed in a batch with others.

        ``lane`` names the transport it came in on (fair shares of the queue). ``deadline``
        (``time.monotonic()`` seconds) drops the request with :class:`DeadlineExceededError`
        if it is still queued then. Raises :class:`OverloadedError` when the queue (or the
        lane's share of it) is full and :class:`UnavailableError` once the batcher is closing.
        Cancelling the caller removes a queued request.
        """
        if self._closing:
            raise UnavailableError(f"model {self.name} is shutting down")
        self.check_room(lane)
        now = self.last_submit = time.monotonic()
        if self._waiting or self._running:
            self._overlapped = now
        loop = asyncio.get_running_loop()
        item: _Item[Request, Result] = _Item(request, rows, loop.create_future(), now, lane)
        self._queue.append(item)
        self._waiting += 1
        self._lanes.add(lane)
        self._waiting_rows += rows
        if deadline is not None:
            item.deadline_timer = loop.call_later(deadline - item.enqueued, self._expire, item)
        self._observer.queue_depth(self._waiting)
        self._schedule()
        try:
            return await item.future
        except asyncio.CancelledError:
            self._leave(item)
            raise

    def check_room(self, lane: str = DEFAULT_LANE) -> None:
        """Raise :class:`OverloadedError` (and count it) if the queue has no room for one more
        request of ``lane``: transports ask before they decode a request, so that refusing one
        costs little under overload."""
        if self._lanes.room_for(lane):
            return
        self._observer.rejected()
        if self._waiting >= self._lanes.capacity:
            raise OverloadedError(
                f"model {self.name} has {self._waiting} requests queued (the limit); retry later"
            )
        raise OverloadedError(
            f"model {self.name} has {self._lanes.of(lane)} {lane} requests queued, its fair share "
            f"while other transports send too ({self._waiting} of {self._lanes.capacity} "
            "queued); retry later"
        )

    async def close(self) -> None:
        """Refuse new requests, run everything queued at once, and wait for running batches."""
        self._closing = True
        self._schedule()
        if self._running or self._waiting:
            self._idle = asyncio.Event()
            await self._idle.wait()

    # -- queue bookkeeping ----------------------------------------------------------------
    def _leave(self, item: _Item[Request, Result]) -> None:
        """Forget a queued request that will not run (cancelled or expired)."""
        if item.deadline_timer is not None:
            item.deadline_timer.cancel()
        if item.enqueued >= 0:  # still queued: dispatch marks taken items with -1
            item.enqueued = -1.0
            self._waiting -= 1
            self._lanes.remove(item.lane)
            self._waiting_rows -= item.rows
            self._observer.queue_depth(self._waiting)
            self._schedule()  # a batch waiting for a slot or its window may now go

    def _expire(self, item: _Item[Request, Result]) -> None:
        if item.enqueued >= 0 and not item.future.done():
            item.future.set_exception(
                DeadlineExceededError(f"the deadline passed while queued for model {self.name}")
            )
            self._leave(item)

    def _oldest(self) -> _Item[Request, Result] | None:
        while self._queue and self._queue[0].enqueued < 0:
            self._queue.popleft()  # left the queue earlier
        return self._queue[0] if self._queue else None

    # -- dispatch ---------------------------------------------------------------------------
    def _schedule(self, turn_over: bool = False) -> None:
        """Start every batch that may start now; arm the timer for the next one that waits.
        ``turn_over``: the loop turn a batch waited for has ended, so it leaves now."""
        while self._running < self._slots:
            oldest = self._oldest()
            if oldest is None:
                break
            due = oldest.enqueued + self._delay
            full = self._waiting_rows >= self._max_rows
            if not (full or self._closing or self._delay == 0 or time.monotonic() >= due):
                self._arm(due)
                return
            if not turn_over and (
                self._lone_candidate() or (self._gathers(oldest) and not (full or self._closing))
            ):
                if self._turn is None:  # give requests ready in this turn a chance to join
                    self._turn = asyncio.get_running_loop().call_soon(self._end_of_turn)
                return
            self._start(self._take())
        if self._closing and self._idle is not None and not (self._running or self._waiting):
            self._idle.set()

    def _gathers(self, oldest: _Item[Request, Result]) -> bool:
        """Whether a batch led by ``oldest`` waits for the end of the turn (no delay set)."""
        lanes = self._gather_lanes
        return self._delay == 0 and (lanes is None or oldest.lane in lanes)

    def _lone_candidate(self) -> bool:
        """One request queued and none running: it may run lone (:data:`RunLone`)."""
        return (
            self._run_lone is not None
            and self._waiting == 1
            and self._running == 0
            and not self._closing
            and time.monotonic() - self._overlapped >= LONE_QUIET_SECONDS
        )

    def _end_of_turn(self) -> None:
        """One loop turn after a batch could leave: a request still alone runs lone, else
        what is queued leaves in batches."""
        self._turn = None
        if self._lone_candidate():
            self._start(self._take(), lone=True)
        self._schedule(turn_over=True)

    def _arm(self, due: float) -> None:
        if self._timer is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(due - time.monotonic(), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._schedule()

    def _take(self) -> list[_Item[Request, Result]]:
        """Pop the next batch: requests in order while their rows fit (at least one)."""
        batch: list[_Item[Request, Result]] = []
        rows = 0
        while self._queue:
            item = self._queue[0]
            if item.enqueued >= 0 and batch and rows + item.rows > self._max_rows:
                break
            self._queue.popleft()
            if item.enqueued < 0:
                continue
            batch.append(item)
            rows += item.rows
        return batch

    def _start(self, batch: list[_Item[Request, Result]], *, lone: bool = False) -> None:
        now = time.monotonic()
        waits = []
        for item in batch:
            if item.deadline_timer is not None:
                item.deadline_timer.cancel()
            item.waited = now - item.enqueued
            waits.append(item.waited)
            item.enqueued = -1.0
            self._lanes.remove(item.lane)
        rows = sum(item.rows for item in batch)
        self._waiting -= len(batch)
        self._waiting_rows -= rows
        self._running += 1
        requests = [item.request for item in batch]
        future = self._run_lone(requests) if lone and self._run_lone is not None else None
        self._observer.dispatched(waits, rows, future is not None)
        self._observer.queue_depth(self._waiting)
        if future is None:
            future = self._run(requests)
        future.add_done_callback(partial(self._finish, batch))

    def _finish(
        self,
        batch: list[_Item[Request, Result]],
        future: asyncio.Future[tuple[list[Result], RunTimes]],
    ) -> None:
        waits = [item.waited for item in batch]
        rows = sum(item.rows for item in batch)
        try:
            results, times = future.result()
            if len(results) != len(batch):
                raise RuntimeError(f"the run returned {len(results)} results for {len(batch)}")
            self._observer.finished(waits, rows, times)
        except Exception as exc:
            self._observer.finished(waits, rows, None)
            log.exception(
                "inference failed for model %s (batch of %d requests); failing only those",
                self.name,
                len(batch),
            )
            for item in batch:
                if not item.future.done():
                    # A run that could not happen (no model process) is the caller's to retry;
                    # any other failure is reported generically.
                    failure = exc if isinstance(exc, UnavailableError) else InferenceFailedError()
                    item.future.set_exception(failure)
        else:
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():  # the caller may have gone away meanwhile
                    item.future.set_result(result)
        finally:
            self._running -= 1
            self._schedule()
