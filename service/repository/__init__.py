"""The model repository: every model version found, loaded once at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from service.errors import InvalidInputError, NotFoundError
from service.repository._layout import MODEL_FILE, discover
from service.repository._model import ServedModel, TensorSpec, load_model
from service.repository._runtime import providers_for, session_options

__all__ = ["MODEL_FILE", "ModelRepository", "ServedModel", "TensorSpec"]

log = logging.getLogger(__name__)


class ModelRepository:
    """Served models by name and version; the latest version answers when none is named."""

    def __init__(self, models: Mapping[str, Mapping[int, ServedModel]]) -> None:
        self._models = {name: dict(sorted(v.items())) for name, v in models.items()}

    @classmethod
    def load(cls, repository: Path, *, device: str, intra_op_threads: int) -> ModelRepository:
        """Load and warm up every ``<model>/<version>/model.onnx`` under ``repository``.

        Raises :class:`~service.errors.ModelLoadError` for a missing repository, an empty one,
        or any file onnxruntime cannot serve.
        """
        providers = providers_for(device)
        options = session_options(intra_op_threads)
        found = discover(repository)
        models = {
            name: {v: load_model(name, v, path, providers, options) for v, path in versions.items()}
            for name, versions in found.items()
        }
        return cls(models)

    def __iter__(self) -> Iterator[ServedModel]:
        for versions in self._models.values():
            yield from versions.values()

    def names(self) -> list[str]:
        """Served model names, sorted."""
        return sorted(self._models)

    def versions(self, name: str) -> list[int]:
        """Versions of ``name``, ascending."""
        return list(self._lookup(name))

    def _lookup(self, name: str) -> dict[int, ServedModel]:
        try:
            return self._models[name]
        except KeyError:
            raise NotFoundError(
                f"model {name!r} is not served (available: {', '.join(self.names())})",
                field="model",
            ) from None

    def get(self, name: str | None = None, version: str | int | None = None) -> ServedModel:
        """The named model (the only one when ``name`` is ``None`` and one is served) at
        ``version`` (the latest when ``None``)."""
        if name is None:
            if len(self._models) != 1:
                raise InvalidInputError(
                    f"model is required when several are served ({', '.join(self.names())})",
                    field="model",
                )
            name = self.names()[0]
        versions = self._lookup(name)
        if version is None or version == "":
            return versions[max(versions)]
        if isinstance(version, bool) or not str(version).isdigit():
            raise InvalidInputError(
                f"version must be a whole number, got {version!r}", field="version"
            )
        try:
            return versions[int(version)]
        except KeyError:
            raise NotFoundError(
                f"model {name!r} has no version {version} (available: "
                f"{', '.join(map(str, versions))})",
                field="version",
            ) from None
