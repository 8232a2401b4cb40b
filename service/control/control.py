"""Model control: when the model manager looks at the repository, and who may ask it to.

* ``poll`` (the default): every ``poll_interval_seconds`` the repository is scanned and every
  model reconciled, so an exported version is served without a restart; the load API rescans a
  model at once (so a label move takes effect now), and unloading is refused (the next look
  would load the files again).
* ``explicit``: every model found is loaded at start-up; afterwards only the load and unload
  API change what is served.
* ``none``: what start-up loaded is served until the service stops; the API refuses both.

Orders go through :mod:`service.control.orders`, so that every serving process applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from functools import partial

from service.control.manager import ModelManager
from service.control.orders import Action, Orders
from service.errors import ModelControlError, ModelLoadError, NotFoundError, UnavailableError
from service.repository import ModelFiles, VersionState, scan

__all__ = ["ControlMode", "ModelControl"]

log = logging.getLogger(__name__)


class ControlMode(StrEnum):
    """Triton's model-control modes."""

    NONE = "none"
    POLL = "poll"
    EXPLICIT = "explicit"


class ModelControl:
    """Start-up loading, polling, and the load / unload orders (see the module docstring)."""

    def __init__(
        self, manager: ModelManager, mode: ControlMode, poll_interval: float, orders: Orders
    ) -> None:
        self.manager = manager
        self.mode = mode
        self._interval = poll_interval
        self._orders = orders
        self._previous: dict[str, ModelFiles] = {}
        self._watching: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._unreadable: set[str] = set()

    async def start(self) -> None:
        """Load every model (raising :class:`~service.errors.ModelLoadError` if one cannot be
        served, or if nothing is), then start polling and taking orders."""
        root = self.manager.root
        self._previous = scan(root)
        await self.manager.start()
        if not self.manager.ready():
            raise ModelLoadError(
                f"model repository {root}: no version is selected by any model's version_policy"
            )
        await self._orders.start(self._apply)
        if self.mode is ControlMode.POLL:
            self._watching = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop polling and taking orders (the manager stops separately)."""
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._orders.stop()

    async def load(self, name: str) -> None:
        """Load (or reload) ``name`` from the repository now, in every serving process."""
        if self.mode is ControlMode.NONE:
            raise ModelControlError(
                "model control is off (model_control_mode none): models cannot be loaded"
            )
        await self._order(name, "load")

    async def unload(self, name: str) -> None:
        """Unload every version of ``name`` (explicit mode only), after its requests finish."""
        if self.mode is not ControlMode.EXPLICIT:
            raise ModelControlError(
                f"unloading needs model_control_mode explicit (it is {self.mode}: "
                + ("the repository is polled, so its files decide; remove the model's folder "
                   "to unload it)" if self.mode is ControlMode.POLL else "control is off)")
            )  # fmt: skip
        await self._order(name, "unload")

    async def _order(self, name: str, action: Action) -> None:
        """Give the order; it runs to its end even when the caller stops waiting (a client's
        deadline or disconnect): a load cut short would leave a session in the model processes
        that nothing serves or frees, and a half-applied change of what serves."""
        task = asyncio.get_running_loop().create_task(self._orders.order(name, action))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
        await asyncio.shield(task)

    async def _apply(self, name: str, action: Action) -> None:
        """Carry out one order in this serving process. A load of a model whose folder is gone
        (or being swapped) answers 404 and changes nothing; only an unload unloads."""
        try:
            found = await asyncio.to_thread(partial(scan, self.manager.root, complete=True))
        except OSError as exc:
            raise UnavailableError(
                f"the model repository cannot be listed ({exc.strerror or type(exc).__name__})"
            ) from exc
        files = found.get(name)
        if files is not None and files.unreadable:
            raise UnavailableError(f"the folder of model {name!r} cannot be read")
        if files is None and (action == "load" or self.manager.versions_of(name) is None):
            raise NotFoundError(f"model {name!r} is not in the repository", field="model")
        await self.manager.reconcile(name, files, wanted=action == "load")
        known = self.manager.versions_of(name)
        assert known is not None
        if action == "unload":
            await self.manager.drained()
            return
        assert files is not None
        failures = [
            s for s in self.manager.statuses(name) if s.reason and s.version in known.desired
        ]
        if known.config_error:
            raise ModelControlError(f"model {name!r}: {known.config_error}")
        if failures:
            failure = failures[0]
            served = "; it keeps serving" if failure.state is VersionState.READY else ""
            raise ModelControlError(
                f"model {name!r} version {failure.version} failed to load{served}: {failure.reason}"
            )
        if not known.desired:
            raise ModelControlError(f"model {name!r}: its version_policy selects no version")

    async def _watch(self) -> None:
        failing = ""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.look()
            except Exception as exc:  # a look must never end polling
                if repr(exc) != failing:  # once, not every second
                    log.exception("polling the model repository failed; serving as before")
                failing = repr(exc)
            else:
                if failing:
                    log.info("polling the model repository works again")
                failing = ""

    async def look(self) -> None:
        """One look at the repository: reconcile every model with the files (a version counts
        once its file is unchanged since the previous look)."""
        found = await asyncio.to_thread(partial(scan, self.manager.root, complete=True))
        unreadable = {n for n, f in found.items() if f.unreadable}
        if unreadable != self._unreadable and unreadable & set(self.manager.model_names()):
            log.warning("model folders that cannot be read: %s; they serve as before",
                        ", ".join(sorted(unreadable)))  # fmt: skip
        self._unreadable = unreadable
        files = {n: f for n, f in found.items() if not f.unreadable}
        previous = self._previous
        # A folder that cannot be read is left as it was, and looked at again next time.
        self._previous = files | {n: previous[n] for n in unreadable if n in previous}
        names = sorted((set(files) | set(self.manager.model_names())) - unreadable)
        # A model new since the previous look has no settled version yet.
        before = {
            n: previous.get(n) or ModelFiles(n, self.manager.root / n, {}, None) for n in names
        }
        await asyncio.gather(
            *(self.manager.reconcile(n, files.get(n), previous=before[n]) for n in names)
        )
