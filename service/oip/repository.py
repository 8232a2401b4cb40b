"""Triton's model-repository and statistics extensions over the data plane, shared by REST
and gRPC: the index, load and unload, and per-version statistics.

Load takes no parameters: a ``config`` override or ``file:`` contents (which would make the
service write models sent over the network) are refused; only files an operator placed in the
repository are ever loaded (docs/model-lifecycle.md). Unload accepts ``unload_dependents``
(there are no ensembles, so there is nothing else to unload).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.dataplane import DataPlane
from service.errors import InvalidInputError

__all__ = ["EXTENSIONS", "load", "repository_index", "statistics", "unload"]

EXTENSIONS = ["model_repository", "statistics"]
"""The extensions this module adds (Triton's names), listed in the server metadata."""


async def repository_index(plane: DataPlane, *, ready_only: bool = False) -> list[dict[str, str]]:
    """``POST /v2/repository/index`` / ``RepositoryIndex``: every model in the repository with
    each version's state (``READY``, ``LOADING``, ``UNLOADING``, ``UNAVAILABLE``) and reason."""
    entries = await plane.models.index(ready_only=ready_only)
    return [
        {"name": e.name, "version": e.version, "state": e.state, "reason": e.reason}
        for e in entries
    ]


def _refuse_parameters(parameters: Mapping[str, Any], allowed: set[str]) -> None:
    for name in parameters:
        if name not in allowed:
            what = "model file contents" if name.startswith("file:") else f"{name!r}"
            raise InvalidInputError(
                f"parameter {what} is not supported: the service loads only what is in its "
                f"model repository (accepted: {', '.join(sorted(allowed)) or 'none'})",
                field="parameters",
            )


async def load(plane: DataPlane, name: str, parameters: Mapping[str, Any]) -> None:
    """``POST /v2/repository/models/{name}/load`` / ``RepositoryModelLoad``: (re)load ``name``
    from the repository; answers once it serves, or with the reason it cannot."""
    _refuse_parameters(parameters, set())
    await plane.models.load(name)


async def unload(plane: DataPlane, name: str, parameters: Mapping[str, Any]) -> None:
    """``POST /v2/repository/models/{name}/unload`` / ``RepositoryModelUnload``: answers once
    the model's queued and running requests are answered and it is unloaded."""
    _refuse_parameters(parameters, {"unload_dependents"})
    await plane.models.unload(name)


def statistics(plane: DataPlane, name: str = "", version: str = "") -> dict[str, Any]:
    """``GET /v2/models[/{name}[/versions/{version}]]/stats`` / ``ModelStatistics``: counts and
    cumulative durations (ns) per loaded version, since it was loaded, in this serving
    process."""
    found = plane.models.statistics(name, version)
    return {"model_stats": [s.report() for s in found]}
