"""Find models in a Triton-style repository: ``<repository>/<model>/<version>/model.onnx``."""

from __future__ import annotations

import logging
from pathlib import Path

from service.errors import ModelLoadError

__all__ = ["CONFIG_FILE", "MODEL_FILE", "discover"]

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
"""Optional per-model settings beside the versions: ``<repository>/<model>/config.json``."""
log = logging.getLogger(__name__)


def discover(repository: Path) -> dict[str, dict[int, Path]]:
    """Model name → version → ONNX file, for every ``<model>/<integer>/model.onnx``.

    Folders without such a version are skipped with a warning; an absent repository or one
    with no model at all is a :class:`ModelLoadError`.
    """
    if not repository.is_dir():
        raise ModelLoadError(
            f"model repository {repository} does not exist (expected "
            f"{repository}/<model>/<version>/{MODEL_FILE}; build one with "
            "'python -m training quickstart-model')"
        )
    found: dict[str, dict[int, Path]] = {}
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir()):
        versions = {
            int(v.name): v / MODEL_FILE
            for v in model_dir.iterdir()
            if v.is_dir() and v.name.isdigit() and (v / MODEL_FILE).is_file()
        }
        if versions:
            found[model_dir.name] = dict(sorted(versions.items()))
        elif not model_dir.name.startswith("."):
            log.warning("skipping %s: no <version>/%s inside", model_dir, MODEL_FILE)
    if not found:
        raise ModelLoadError(
            f"model repository {repository} holds no model (expected "
            f"{repository}/<model>/<version>/{MODEL_FILE})"
        )
    return found
