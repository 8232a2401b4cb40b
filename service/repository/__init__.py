"""The model repository: every model version found, loaded once at start-up.

:func:`load_models` opens the sessions (in a model process); :class:`ModelRepository` is the
lookup of what is served, by name and version, over the models' specs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from service.batching import BatchingOptions, with_overrides
from service.errors import InvalidInputError, NotFoundError
from service.repository._layout import CONFIG_FILE, MODEL_FILE, discover
from service.repository._model import LoadedModel, ServedModel, TensorSpec, load_model
from service.repository._runtime import providers_for, session_options

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "LoadedModel",
    "ModelRepository",
    "ServedModel",
    "TensorSpec",
    "discover",
    "load_models",
]

log = logging.getLogger(__name__)


def load_models(
    repository: Path,
    *,
    device: str,
    intra_op_threads: int,
    batching: BatchingOptions | None = None,
) -> list[LoadedModel]:
    """Load and warm up every ``<model>/<version>/model.onnx`` under ``repository``, each model
    with ``batching`` updated by its ``<model>/config.json`` when there is one.

    Raises :class:`~service.errors.ModelLoadError` for a missing repository, an empty one, an
    invalid ``config.json``, or any file onnxruntime cannot serve.
    """
    providers = providers_for(device)
    options = session_options(intra_op_threads)
    defaults = batching or BatchingOptions.model_validate({})
    loaded = []
    for name, versions in discover(repository).items():
        model_batching = with_overrides(defaults, repository / name / CONFIG_FILE)
        for version, path in versions.items():
            loaded.append(load_model(name, version, path, providers, options, model_batching))
    return loaded


class ModelRepository:
    """Served models by name and version; the latest version answers when none is named."""

    def __init__(self, models: Iterable[ServedModel]) -> None:
        found: dict[str, dict[int, ServedModel]] = {}
        for model in models:
            found.setdefault(model.name, {})[model.version] = model
        self._models = {name: dict(sorted(v.items())) for name, v in sorted(found.items())}

    def __iter__(self) -> Iterator[ServedModel]:
        for versions in self._models.values():
            yield from versions.values()

    def names(self) -> list[str]:
        """Served model names, sorted."""
        return list(self._models)

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
        text = str(version)
        # ASCII only: isdigit() also accepts "²", which int() refuses.
        if isinstance(version, bool) or not (text.isascii() and text.isdigit()):
            raise InvalidInputError(
                f"version must be a whole number, got {version!r}", field="version"
            )
        digits = text.lstrip("0") or "0"
        try:
            # int() refuses more than 4300 digits; so many name no served version anyway.
            return versions[int(digits) if len(digits) <= 30 else -1]
        except KeyError:
            shown = digits if len(digits) <= 30 else f"{digits[:30]}… ({len(digits)} digits)"
            raise NotFoundError(
                f"model {name!r} has no version {shown} (available: "
                f"{', '.join(map(str, versions))})",
                field="version",
            ) from None
