"""What the service serves right now, by name and version: the lookup every request goes
through, and each version's state.

The model manager (``service.control``) changes it as versions load, fail and retire; every
change to one model replaces that model's routing in one assignment, so a request sees either
the old routing or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.errors import InvalidInputError, NotFoundError
from service.repository._model import ServedModel
from service.repository.model_config import LABEL

__all__ = ["ModelRepository", "VersionState", "VersionStatus"]


class VersionState(StrEnum):
    """Where a version is in its life (Triton's names, plus ``FAILED``)."""

    LOADING = "LOADING"
    READY = "READY"
    UNLOADING = "UNLOADING"
    FAILED = "FAILED"
    """Could not be loaded; ``reason`` says why. Reported as ``UNAVAILABLE`` over V2."""


@dataclass(frozen=True)
class VersionStatus:
    """A version's state, and why when it failed."""

    version: int
    state: VersionState
    reason: str = ""
    calibration_temperature: float | None = None
    """The temperature of the calibration a READY version serves with (``None``: none)."""


@dataclass(frozen=True)
class _Routing:
    versions: dict[int, ServedModel]
    """Ready versions, ascending."""
    default: int
    """The version that answers when none is named."""
    labels: dict[str, int]
    """Labels whose version is ready."""


class ModelRepository:
    """Served models by name, version or label; the default version when none is named."""

    def __init__(self, models: Mapping[str, list[ServedModel]] | None = None) -> None:
        self._routes: dict[str, _Routing] = {}
        self.generation = 0
        """Counts the routing changes (what depends on the served models, such as the REST
        API's schema, is rebuilt when it moves)."""
        self._status: dict[str, dict[int, VersionStatus]] = {}
        for name, versions in (models or {}).items():
            self.route(name, versions, None, {})

    # -- changes (the model manager's) ----------------------------------------------------
    def route(
        self,
        name: str,
        versions: list[ServedModel],
        default: int | None,
        labels: Mapping[str, int],
    ) -> None:
        """Serve ``versions`` of ``name`` (none: stop serving it), ``default`` (the highest when
        ``None`` or not among them) when no version is named, and the ``labels`` whose version
        is among them."""
        self.generation += 1
        if not versions:
            self._routes = {n: r for n, r in self._routes.items() if n != name}
            return
        by_version = {m.version: m for m in sorted(versions, key=lambda m: m.version)}
        chosen = default if default in by_version else max(by_version)
        ready = {label: v for label, v in labels.items() if v in by_version}
        routes = dict(self._routes)
        routes[name] = _Routing(by_version, chosen, ready)
        self._routes = dict(sorted(routes.items()))

    def set_status(self, name: str, statuses: list[VersionStatus]) -> None:
        """Every known version of ``name`` with its state (for the index and ``/models``)."""
        if statuses:
            self._status[name] = {s.version: s for s in sorted(statuses, key=lambda s: s.version)}
        else:
            self._status.pop(name, None)

    # -- lookups ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ServedModel]:
        for routing in self._routes.values():
            yield from routing.versions.values()

    def names(self) -> list[str]:
        """Served model names, sorted."""
        return list(self._routes)

    def versions(self, name: str) -> list[int]:
        """Ready versions of ``name``, ascending."""
        return list(self._lookup(name).versions)

    def default_version(self, name: str) -> int:
        """The version of ``name`` that answers when none is named."""
        return self._lookup(name).default

    def labels(self, name: str) -> dict[str, int]:
        """The labels of ``name`` that answer (their version is ready)."""
        return dict(self._lookup(name).labels)

    def statuses(self, name: str) -> list[VersionStatus]:
        """Every known version of ``name`` with its state; empty for an unknown model."""
        return list(self._status.get(name, {}).values())

    def known(self) -> list[str]:
        """Every model with a known version state (served or not), sorted."""
        return sorted(self._status)

    def _lookup(self, name: str) -> _Routing:
        try:
            return self._routes[name]
        except KeyError:
            raise NotFoundError(
                f"model {name!r} is not served (available: {', '.join(self.names())})",
                field="model",
            ) from None

    def get(self, name: str | None = None, version: str | int | None = None) -> ServedModel:
        """The named model (the only one when ``name`` is ``None`` and one is served) at
        ``version`` — a number or a label — (its default version when ``None``)."""
        if name is None:
            if len(self._routes) != 1:
                raise InvalidInputError(
                    f"model is required when several are served ({', '.join(self.names())})",
                    field="model",
                )
            name = self.names()[0]
        routing = self._lookup(name)
        if version is None or version == "":
            return routing.versions[routing.default]
        text = str(version)
        if isinstance(version, str) and LABEL.fullmatch(text):
            return self._labelled(name, routing, text)
        # ASCII only: isdigit() also accepts "²", which int() refuses.
        if isinstance(version, bool) or not (text.isascii() and text.isdigit()):
            raise InvalidInputError(
                f"version must be a whole number or a label, got {version!r}", field="version"
            )
        digits = text.lstrip("0") or "0"
        try:
            # int() refuses more than 4300 digits; so many name no served version anyway.
            return routing.versions[int(digits) if len(digits) <= 30 else -1]
        except KeyError:
            shown = digits if len(digits) <= 30 else f"{digits[:30]}… ({len(digits)} digits)"
            raise NotFoundError(
                f"model {name!r} has no version {shown} ready (ready: "
                f"{', '.join(map(str, routing.versions))})",
                field="version",
            ) from None

    def _labelled(self, name: str, routing: _Routing, label: str) -> ServedModel:
        if label in routing.labels:
            return routing.versions[routing.labels[label]]
        known = ", ".join(routing.labels) or "none"
        raise NotFoundError(
            f"model {name!r} has no label {label!r} on a ready version (labels: {known})",
            field="version",
        )
