"""The model manager: which versions of which models are loaded, and the changes between.

One look at the repository (:meth:`ModelManager.reconcile`) compares the files with what is
loaded. A new or changed version is loaded and warmed up in every model process off the request
path (the model processes load on a thread of their own while batches run); then the model's
routing switches in one assignment, so "latest" and labels move atomically. A version that is
no longer wanted — or an instance that a reload replaced — takes no new requests, waits for
quiet, lets its queued and running batches finish, and only then is unloaded (its session
dropped, its memory handed back). A version that fails to load never replaces one that serves,
and is not retried until its file or options change. Readiness follows: ready while a model
is served, never with none.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from service.batching import BatchingOptions, DynamicBatcher, Observers
from service.batching.lanes import GRPC_LANE
from service.control.calibrations import apply_calibrations
from service.control.statistics import VersionStatistics
from service.control.versions import Batcher, Instance, ModelVersions, settled
from service.errors import ModelLoadError, UnavailableError
from service.execution import Executor, LoadOrder
from service.repository import (
    CONFIG_FILE,
    FileStamp,
    ModelFiles,
    ModelRepository,
    ServedModel,
    VersionStatus,
    read_model_config,
    scan,
)
from service.telemetry import Telemetry

__all__ = ["ModelManager"]

log = logging.getLogger(__name__)

_GATHER_LANES = frozenset({GRPC_LANE})
"""Lanes whose batches wait for the end of the event-loop turn (see DynamicBatcher). gRPC's:
``grpc.aio`` hands calls to the loop in short steps, so calls ready in the same turn are many
and the wait is short (at 32 in flight: mean batch 2.3 -> 5, +10% req/s). Not REST's: uvicorn
decodes each request in a step of its own (0.1-0.4 ms of JSON), so a REST batch that waited for
the turn's end left the model idle through the rest of the turn's decoding (V2 REST JSON at 16
in flight: -9% req/s over ten alternating rounds, for batches of 8 instead of 7.5)."""

QUIET_SECONDS = 1.0
"""How long a retiring instance must go without a new request before it closes: a request that
found its model just before the switch may still be decoding on its way to the batcher."""


class ModelManager:
    """Loads, routes and retires model versions; owns every version's batcher."""

    def __init__(
        self,
        root: Path,
        defaults: BatchingOptions,
        executor: Executor,
        telemetry: Telemetry,
        repository: ModelRepository,
        *,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        self.root = root
        self.repository = repository
        self._defaults = defaults
        self._executor = executor
        self._telemetry = telemetry
        self._quiet = quiet_seconds
        self._models: dict[str, ModelVersions] = {}
        self._batchers: dict[int, Batcher] = {}
        """Instance → batcher, for serving and retiring instances."""
        self._statistics: dict[tuple[str, int], VersionStatistics] = {}
        self._instances = itertools.count(1)
        self._retirements: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[], None]] = []
        self._stopped = False

    # -- what the data plane asks ------------------------------------------------------------
    def batcher(self, model: ServedModel) -> Batcher:
        """The batcher of ``model``'s instance; when that instance has closed since the request
        found it, the version's current instance if it takes the same input."""
        batcher = self._batchers.get(model.instance)
        if batcher is not None and not batcher.closing:
            return batcher
        current = self._models.get(model.name)
        instance = current.serving.get(model.version) if current else None
        if (
            instance is not None
            and instance.model.image_shape == model.image_shape
            and (instance.model.num_classes == model.num_classes)
        ):
            return instance.batcher
        raise UnavailableError(f"model {model.name} version {model.version} was unloaded")

    def ready(self) -> bool:
        """At least one model is served (a service with nothing loaded is not ready)."""
        return bool(self.repository.names())

    def on_readiness_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when :meth:`ready` changes (a first model served, the last gone)."""
        self._listeners.append(listener)

    def statistics(self, name: str, version: int) -> VersionStatistics | None:
        """The statistics of a loaded version."""
        return self._statistics.get((name, version))

    def model_names(self) -> list[str]:
        """Every model the manager knows of, sorted."""
        return sorted(self._models)

    def versions_of(self, name: str) -> ModelVersions | None:
        """What the manager knows of model ``name``."""
        return self._models.get(name)

    # -- looking at the files ----------------------------------------------------------------
    async def start(self) -> None:
        """Load what every model's policy selects, at start-up: any failure is a
        :class:`~service.errors.ModelLoadError` (a service must start with what it was given)."""
        for files in scan(self.root).values():
            await self.reconcile(files.name, files, strict=True)

    async def reconcile(
        self,
        name: str,
        files: ModelFiles | None,
        *,
        previous: ModelFiles | None = None,
        strict: bool = False,
        wanted: bool | None = None,
    ) -> None:
        """Bring model ``name`` in line with ``files`` (``None``: its folder is gone). With
        ``previous`` (the look before), a file counts only once it is unchanged across both
        looks, so a half-copied file is never loaded, and a model or version must be missing
        at both looks to be retired. ``wanted`` (an order): whether the model is to be served
        from now on; an order also retries versions that failed before."""
        model = self._models.setdefault(name, ModelVersions(name))
        async with model.lock:
            if self._stopped:
                return
            if wanted is not None:
                model.wanted = wanted
                model.failed.clear()
            await self._reconcile(model, files, previous, strict)

    async def _reconcile(
        self,
        model: ModelVersions,
        files: ModelFiles | None,
        previous: ModelFiles | None,
        strict: bool,
    ) -> None:
        if files is None and previous is not None and previous.versions:
            return  # gone at this look only (a folder being swapped, a failed listing): wait
        if files is not None:
            first = previous is None or model.config is None
            before = previous.config if previous is not None else None
            config_stamp = settled(files.config, before, model.config_stamp, first_look=first)
            if model.config is None or config_stamp != model.config_stamp:
                self._read_config(model, files.folder, config_stamp, strict)
        complete = _complete(model, files, previous)
        config = model.config
        if files is None or config is None or not model.wanted:
            model.desired = set()
        else:
            selected = config.policy.select(complete)
            model.desired = selected | {v for v in config.labels.values() if v in complete}
        replaced = []
        for version in sorted(model.desired, reverse=True):  # the newest first
            assert files is not None
            assert config is not None
            stamp = complete[version]
            current = model.serving.get(version)
            if current is not None and current.matches(stamp, config.batching):
                model.failed.pop(version, None)
                continue
            attempt = (stamp, config.batching)
            if version in model.failed and model.failed[version][0] == attempt:
                continue  # failed before, unchanged since
            old = await self._load(model, version, files.path(version), attempt, strict)
            if old is not None:
                replaced.append(old)
        for version in [v for v in model.failed if v not in complete]:
            del model.failed[version]
        labels = _labels(model, complete)
        keep: set[int] = set()
        if model.desired and config is not None:
            # The policy over what serves: a version that failed to load is passed over, so a
            # bad export never retires the version it was to replace. If nothing wanted could
            # be loaded, what serves keeps serving.
            available = set(complete) & set(model.serving)
            keep = config.policy.select(available) | set(labels.values()) or set(model.serving)
        for version in [v for v in model.serving if v not in keep]:
            replaced.append(model.serving.pop(version))
        if files is not None:
            await apply_calibrations(model, files, previous)
        model.labels = {label: v for label, v in labels.items() if v in model.serving}
        self._route(model)
        for instance in replaced:
            self._retire(model, instance)

    def _read_config(
        self, model: ModelVersions, folder: Path, stamp: FileStamp | None, strict: bool
    ) -> None:
        model.config_stamp = stamp
        try:
            model.config = read_model_config(self._defaults, folder / CONFIG_FILE)
            model.config_error = ""
        except ModelLoadError as exc:
            if strict:
                raise
            model.config_error = str(exc)
            log.error("%s; model %s keeps its previous settings", exc, model.name)

    def _route(self, model: ModelVersions) -> None:
        config = model.config
        versions = [i.model for i in model.serving.values()]
        chosen = config.policy.select(model.serving) if config else set()
        default = max(chosen) if chosen else None
        was_ready = self.ready()
        self.repository.route(model.name, versions, default, model.labels)
        self._publish(model)
        if self.ready() != was_ready:
            for listener in self._listeners:
                listener()

    def _publish(self, model: ModelVersions) -> None:
        statuses = model.statuses()
        self.repository.set_status(model.name, statuses)
        seen = {s.version for s in statuses}
        for status in statuses:
            self._telemetry.version_state_changed(model.name, status.version, status.state)
        for version in model.published - seen:
            self._telemetry.version_state_changed(model.name, version, None)
        model.published = seen

    # -- loading -------------------------------------------------------------------------------
    async def _load(
        self,
        model: ModelVersions,
        version: int,
        path: Path,
        attempt: tuple[FileStamp, BatchingOptions],
        strict: bool,
    ) -> Instance | None:
        """Load ``version`` as a new instance; the instance it replaces, if any."""
        name, instance = model.name, next(self._instances)
        model.loading.add(version)
        self._publish(model)
        log.info("model %s version %d: loading %s", name, version, path)
        started = time.perf_counter()
        try:
            spec = await self._executor.load(LoadOrder(instance, name, version, path, attempt[1]))
        except ModelLoadError as exc:
            model.failed[version] = (attempt, str(exc))
            self._telemetry.load_finished(name, version, time.perf_counter() - started, ok=False)
            serving = ", ".join(map(str, model.serving)) or "none"
            log.error(
                "model %s version %d: FAILED to load; serving as before (versions %s): %s",
                name, version, serving, exc,
            )  # fmt: skip
            if strict:
                raise
            return None
        finally:
            model.loading.discard(version)
        seconds = time.perf_counter() - started
        spec = replace(spec, instance=instance)
        statistics = self._statistics.setdefault((name, version), VersionStatistics(name, version))
        batcher: Batcher = DynamicBatcher(
            f"{name} version {version}",
            partial(self._executor.run_batch, instance),
            self._executor.slots,
            spec.batching,
            Observers(self._telemetry.batching(name, version), statistics),
            partial(self._executor.run_lone, instance),
            gather_lanes=_GATHER_LANES,
        )
        self._batchers[instance] = batcher
        model.failed.pop(version, None)
        old = model.serving.get(version)
        loaded = Instance(spec, batcher, attempt[0])
        if old is not None and old.stamp == loaded.stamp:  # new options, same file and
            served = replace(spec, calibration=old.model.calibration)  # calibration
            loaded = replace(old, model=served, batcher=batcher)
        model.serving[version] = loaded
        self._telemetry.model_loaded(name, version, spec.provider, spec.metadata)
        self._telemetry.load_finished(name, version, seconds, ok=True)
        log.info("model %s version %d: READY (loaded in %.0f ms)", name, version, seconds * 1e3)
        return old

    # -- retiring ------------------------------------------------------------------------------
    def _retire(self, model: ModelVersions, instance: Instance) -> None:
        model.retiring[instance.model.instance] = instance.model.version
        self._publish(model)
        log.info("model %s version %d: UNLOADING (draining)", model.name, instance.model.version)
        task = asyncio.get_running_loop().create_task(self._drain(model, instance))
        self._retirements.add(task)
        task.add_done_callback(self._retirements.discard)

    async def _drain(self, model: ModelVersions, instance: Instance) -> None:
        spec, batcher = instance.model, instance.batcher
        retired = time.monotonic()
        while (idle := time.monotonic() - max(batcher.last_submit, retired)) < self._quiet:
            await asyncio.sleep(self._quiet - idle)
        await batcher.close()  # runs what is queued, waits for what runs
        self._batchers.pop(spec.instance, None)
        await self._executor.unload(spec.instance)
        del model.retiring[spec.instance]
        if spec.version not in model.serving and spec.version not in model.retiring.values():
            self._statistics.pop((model.name, spec.version), None)
            self._telemetry.model_unloaded(model.name, spec.version, spec.provider, spec.metadata)
        self._publish(model)
        log.info("model %s version %d: unloaded", model.name, spec.version)

    async def drained(self) -> None:
        """Wait until every retiring instance is unloaded."""
        while self._retirements:
            await asyncio.gather(*self._retirements, return_exceptions=True)

    async def stop(self) -> None:
        """No more changes; finish every queued and running batch of every instance."""
        self._stopped = True
        for task in list(self._retirements):
            task.cancel()
        await asyncio.gather(*self._retirements, return_exceptions=True)
        await asyncio.gather(*(batcher.close() for batcher in self._batchers.values()))

    def statuses(self, name: str) -> list[VersionStatus]:
        """Each known version of ``name`` with its state."""
        return self.repository.statuses(name)


def _complete(
    model: ModelVersions, files: ModelFiles | None, previous: ModelFiles | None
) -> dict[int, FileStamp]:
    """The versions whose file is complete: unchanged since the previous look (without one, as
    it is). A serving version whose file is being rewritten, or is missing at this look only,
    counts as the file it was loaded from."""
    now = files.versions if files is not None else {}
    before = previous.versions if previous is not None else {}
    complete: dict[int, FileStamp] = {}
    for version in sorted(set(now) | set(before)):
        loaded = model.serving.get(version)
        stamp = settled(
            now.get(version), before.get(version), loaded.stamp if loaded else None,
            first_look=previous is None,
        )  # fmt: skip
        if stamp is not None:
            complete[version] = stamp
    return complete


def _labels(model: ModelVersions, complete: dict[int, FileStamp]) -> dict[str, int]:
    """Each label's version: the one ``config.json`` names once it serves; until then — or if it
    failed to load — the version the label pointed at, while that one is still complete."""
    found = {}
    for label, version in (model.config.labels if model.config else {}).items():
        if version in model.serving and version in complete:
            found[label] = version
        elif (old := model.labels.get(label)) is not None and old in complete:
            found[label] = old
    return found
