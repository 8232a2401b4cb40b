"""Find models in a Triton-style repository: ``<repository>/<model>/<version>/model.onnx``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from service.calibration.file import CALIBRATION_FILE
from service.errors import ModelLoadError

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "FileStamp",
    "ModelFiles",
    "discover",
    "file_stamp",
    "scan",
]

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
"""Optional per-model settings beside the versions: ``<repository>/<model>/config.json``."""
log = logging.getLogger(__name__)

FileStamp = tuple[int, int, int]
"""A file's inode, size and modification time (ns): what tells that it changed."""


def file_stamp(path: Path) -> FileStamp | None:
    """The file's stamp; ``None`` when there is no such file (any other error is raised)."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


UNREADABLE: FileStamp = (-1, -1, -1)
"""The stamp of a ``calibration.json`` that is there but cannot be looked at (a dangling or
looping link, no permission): it is read, and refused, like a bad file — its version serves
uncalibrated — instead of hiding the whole model."""


def _calibration_stamp(path: Path) -> FileStamp | None:
    try:
        return file_stamp(path)
    except OSError:
        return UNREADABLE


@dataclass(frozen=True)
class ModelFiles:
    """One model's files as one look at the repository found them."""

    name: str
    folder: Path
    versions: dict[int, FileStamp]
    """Version → stamp of its ``model.onnx``."""
    config: FileStamp | None
    """Stamp of ``config.json``; ``None`` without one."""
    unreadable: bool = False
    """The folder or one of its files could not be read at this look (not: is gone)."""
    calibrations: dict[int, FileStamp] = field(default_factory=dict)
    """Version → stamp of its ``calibration.json``, for versions that have one."""

    def path(self, version: int) -> Path:
        """The ONNX file of ``version``."""
        return self.folder / str(version) / MODEL_FILE


def scan(repository: Path, *, complete: bool = False) -> dict[str, ModelFiles]:
    """Every model folder holding at least one ``<integer>/model.onnx``, by name (sorted), with
    the stamps of its files. What cannot be read holds nothing — unless ``complete``: then a
    repository that cannot be listed raises :class:`OSError`, and a folder that cannot be read
    is returned marked ``unreadable`` (a look that could not see everything must not take
    models for gone)."""
    found: dict[str, ModelFiles] = {}
    try:
        folders = sorted(p for p in repository.iterdir() if p.is_dir())
    except OSError:
        if complete:
            raise
        return found
    for folder in folders:
        try:
            files = _model_files(folder)
        except FileNotFoundError:
            continue  # removed since the repository was listed
        except OSError:
            if complete:
                found[folder.name] = ModelFiles(folder.name, folder, {}, None, unreadable=True)
            continue
        if files.versions:
            found[folder.name] = files
    return found


def _model_files(folder: Path) -> ModelFiles:
    versions, calibrations = {}, {}
    for entry in folder.iterdir():
        # ASCII digits only: isdigit() also accepts "²", which int() refuses.
        if entry.name.isascii() and entry.name.isdigit() and len(entry.name) <= 18:
            stamp = file_stamp(entry / MODEL_FILE)
            if stamp is not None:
                versions[int(entry.name)] = stamp
                calibration = _calibration_stamp(entry / CALIBRATION_FILE)
                if calibration is not None:
                    calibrations[int(entry.name)] = calibration
    return ModelFiles(
        folder.name,
        folder,
        dict(sorted(versions.items())),
        file_stamp(folder / CONFIG_FILE),
        calibrations=calibrations,
    )


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
    models = scan(repository)
    for folder in sorted(p for p in repository.iterdir() if p.is_dir()):
        if folder.name not in models and not folder.name.startswith("."):
            log.warning("skipping %s: no <version>/%s inside", folder, MODEL_FILE)
    if not models:
        raise ModelLoadError(
            f"model repository {repository} holds no model (expected "
            f"{repository}/<model>/<version>/{MODEL_FILE})"
        )
    return {name: {v: files.path(v) for v in files.versions} for name, files in models.items()}
