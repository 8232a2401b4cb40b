"""What is served and how it changes: model lookups, the repository index, load and unload
orders, and per-version statistics — for every transport, over the model control."""

from __future__ import annotations

import asyncio

from service.control import ModelControl, VersionStatistics
from service.dataplane.messages import IndexEntry, ModelVersions
from service.errors import InvalidInputError, NotFoundError
from service.repository import ServedModel, VersionState, scan

__all__ = ["Catalog"]

V2_STATE = {VersionState.FAILED: "UNAVAILABLE"}
"""Triton's names for the states it lacks."""


class Catalog:
    """The served models, and the model-repository and statistics operations."""

    def __init__(self, control: ModelControl) -> None:
        self.control = control
        self.repository = control.manager.repository

    def get(self, name: str | None = None, version: str | int | None = None) -> ServedModel:
        """The served model ``name`` at ``version`` — a number or a label — (its default
        version when ``None``)."""
        return self.repository.get(name, version)

    def known(self, name: str) -> bool:
        """Whether ``name`` is a model of the repository that has been seen (served or not)."""
        return name in self.control.manager.model_names()

    def versions(self, name: str) -> list[ModelVersions]:
        """Model ``name`` with its versions and states (empty if it is not served)."""
        return [m for m in self.served() if m.name == name]

    def served(self) -> list[ModelVersions]:
        """Every served model with its versions, default, labels and states, by name."""
        repository = self.repository
        return [
            ModelVersions(
                name,
                repository.versions(name),
                repository.default_version(name),
                repository.labels(name),
                repository.statuses(name),
            )
            for name in repository.names()
        ]

    async def index(self, *, ready_only: bool = False) -> list[IndexEntry]:
        """Every model in the repository or loaded, each version with its state (Triton's
        names); a model with no version loaded is one ``UNAVAILABLE`` entry."""
        on_disk = await asyncio.to_thread(scan, self.control.manager.root)
        entries = []
        for name in sorted(set(on_disk) | set(self.repository.known())):
            statuses = self.repository.statuses(name)
            for status in statuses:
                state = V2_STATE.get(status.state, str(status.state))
                entries.append(IndexEntry(name, str(status.version), state, status.reason))
            if not statuses:
                entries.append(IndexEntry(name, "", "UNAVAILABLE", "not loaded"))
        if ready_only:
            entries = [e for e in entries if e.state == VersionState.READY]
        return entries

    async def load(self, name: str) -> None:
        """Load or reload ``name`` (every serving process), answering once it serves."""
        await self.control.load(_model_name(name))

    async def unload(self, name: str) -> None:
        """Unload ``name`` once its queued and running requests are answered."""
        await self.control.unload(_model_name(name))

    def statistics(self, name: str = "", version: str = "") -> list[VersionStatistics]:
        """Statistics of every loaded version (of model ``name``; of ``version`` of it)."""
        manager = self.control.manager
        if not name:
            if version:
                raise InvalidInputError("a version needs a model name", field="version")
            names = self.repository.names()
        else:
            self.repository.versions(name)  # NotFoundError for a model not served
            names = [name]
        found = []
        for model in names:
            versions = [self.get(model, version).version] if version else (
                self.repository.versions(model)
            )  # fmt: skip
            for v in versions:
                statistics = manager.statistics(model, v)
                if statistics is not None:
                    found.append(statistics)
        return found


def _model_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise NotFoundError(f"model {name!r} is not in the repository", field="model")
    return name
