"""Load and unload orders, carried out by every serving process before the caller is answered.

One serving process (:class:`LocalOrders`) applies an order at once. With ``--workers N`` each
worker is a whole server with its own model processes, and an order reaches just one of them,
so :class:`SharedOrders` passes it on through a folder the supervisor creates
(:data:`CONTROL_DIR`): the worker appends the order to ``orders.jsonl`` (under an exclusive
``flock``, so numbers never clash), every worker — itself included — notices the file grow,
applies the new orders in order and writes how each went to its ``ack-<pid>.json``, and the
worker that took the order answers once all N acknowledged it, with the first error any of them
met. Polling needs none of this: every worker looks at the same repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from service.errors import ServiceError, UnavailableError, error_from_code

__all__ = ["CONTROL_DIR", "Action", "LocalOrders", "Orders", "SharedOrders"]

log = logging.getLogger(__name__)

CONTROL_DIR = "SERVICE_CONTROL_DIR"
"""The environment variable naming the workers' shared control folder (set by the supervisor)."""
Action = Literal["load", "unload"]
Apply = Callable[[str, Action], Awaitable[None]]
ORDER_TIMEOUT = 600.0
"""Longest an order waits for every worker (a large model may take minutes to load)."""


class Orders(Protocol):
    async def start(self, apply: Apply) -> None: ...
    async def order(self, name: str, action: Action) -> None: ...
    async def stop(self) -> None: ...


class LocalOrders:
    """One serving process: an order is applied here and now."""

    def __init__(self) -> None:
        self._apply: Apply | None = None

    async def start(self, apply: Apply) -> None:
        self._apply = apply

    async def order(self, name: str, action: Action) -> None:
        """Apply the order; raises what applying it raised."""
        assert self._apply is not None
        await self._apply(name, action)

    async def stop(self) -> None:
        pass


class SharedOrders:
    """Orders shared by ``workers`` serving processes through ``folder``."""

    def __init__(self, folder: Path, workers: int, *, interval: float = 0.05) -> None:
        self._folder = folder
        self._workers = workers
        self._interval = interval
        self._orders = folder / "orders.jsonl"
        self._ack = folder / f"ack-{os.getpid()}.json"
        self._applied = 0
        self._outcomes: dict[str, list[str | None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self, apply: Apply) -> None:
        self._orders.touch(exist_ok=True)
        await self._catch_up(apply)
        await asyncio.to_thread(self._write_ack)
        self._task = asyncio.get_running_loop().create_task(self._follow(apply))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def order(self, name: str, action: Action) -> None:
        """Append the order, wait until every worker applied it, raise the first error."""
        number = await asyncio.to_thread(self._append, name, action)
        deadline = time.monotonic() + ORDER_TIMEOUT
        while True:
            acks = await asyncio.to_thread(self._acks)
            done = [a for a in acks if a.get("applied", 0) >= number]
            if len(done) >= self._workers:
                break
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"only {len(done)} of {self._workers} workers applied the {action} of "
                    f"model {name!r} within {ORDER_TIMEOUT:.0f} s"
                )
            await asyncio.sleep(self._interval)
        for ack in done:
            failure = ack.get("outcomes", {}).get(str(number))
            if failure:
                raise error_from_code(*failure)

    def _append(self, name: str, action: Action) -> int:
        with self._orders.open("a+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.seek(0)
            number = sum(1 for _ in file) + 1
            file.write(json.dumps({"number": number, "model": name, "action": action}) + "\n")
            file.flush()
            return number

    def _acks(self) -> list[dict[str, Any]]:
        found = []
        for path in self._folder.glob("ack-*.json"):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_text()))
        return found

    async def _follow(self, apply: Apply) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._catch_up(apply)
            except Exception:
                log.exception("reading the workers' model orders failed; trying again")

    async def _catch_up(self, apply: Apply) -> None:
        text = await asyncio.to_thread(self._orders.read_text)
        lines = text[: text.rfind("\n") + 1].splitlines()  # a line being written waits
        if len(lines) <= self._applied:
            return
        for line in lines[self._applied :]:
            order = json.loads(line)
            try:
                await apply(order["model"], order["action"])
            except ServiceError as exc:
                self._outcomes[str(order["number"])] = [exc.code, exc.message, exc.field]
            except Exception:  # reported, never retried: the next order must not wait
                log.exception("applying model order %s failed", order)
                self._outcomes[str(order["number"])] = [
                    "internal",
                    f"applying the order failed in worker {os.getpid()} (see its log)",
                    None,
                ]
            self._applied = order["number"]
        self._outcomes = dict(list(self._outcomes.items())[-100:])
        await asyncio.to_thread(self._write_ack)

    def _write_ack(self) -> None:
        staged = self._ack.with_suffix(".tmp")
        staged.write_text(json.dumps({"applied": self._applied, "outcomes": self._outcomes}))
        staged.replace(self._ack)
