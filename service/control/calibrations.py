"""Each serving version's ``calibration.json``, applied without a reload.

A calibration changes what the data plane does with a version's logits, not the model: the
instance, its session and its batcher stay, and only the version's :class:`ServedModel` (which
the next routing publishes) carries the new temperature. A file that cannot be used leaves the
version serving uncalibrated, with the reason in its state and a log line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

from service.calibration.file import (
    CALIBRATION_FILE,
    CalibrationFileError,
    file_sha256,
    read_calibration,
)
from service.control.versions import Instance, ModelVersions, settled
from service.repository import FileStamp, ModelFiles, file_stamp

__all__ = ["apply_calibrations"]

log = logging.getLogger(__name__)


async def apply_calibrations(
    model: ModelVersions, files: ModelFiles, previous: ModelFiles | None
) -> None:
    """Read the calibration of each version ``model`` keeps serving whose file changed, once the
    file is unchanged across two looks (as model files are); ``previous`` ``None`` (start-up,
    an order): as it is now."""
    for version, instance in list(model.serving.items()):
        before = previous.calibrations.get(version) if previous is not None else None
        now = settled(
            files.calibrations.get(version), before, instance.calibration_stamp,
            first_look=previous is None,
        )  # fmt: skip
        if version not in files.versions or now == instance.calibration_stamp:
            continue
        folder = files.folder / str(version)
        calibrated = await asyncio.to_thread(_calibrated, instance, folder, now)
        if calibrated is None:
            continue  # its model file is being replaced: the reload comes first
        model.serving[version] = calibrated
        applied = calibrated.model.calibration
        if applied is not None:
            log.info("model %s version %d: calibrated (temperature %.6g, %s)",
                     model.name, version, applied.temperature, CALIBRATION_FILE)  # fmt: skip
        elif instance.model.calibration is not None and not calibrated.calibration_error:
            log.info("model %s version %d: calibration removed", model.name, version)


def _calibrated(instance: Instance, folder: Path, stamp: FileStamp | None) -> Instance | None:
    """``instance`` with the calibration in ``folder`` (none if it is refused, with why);
    ``None`` when the model file is no longer the one the instance was loaded from."""
    error, digest = "", instance.model_sha256
    try:
        calibration = read_calibration(folder)
        if calibration is not None and calibration.model_sha256 is not None:
            if digest is None:  # once per loaded file
                digest = file_sha256(instance.model.path)
                if file_stamp(instance.model.path) != instance.stamp:
                    return None
            if not calibration.applies_to(digest):
                raise CalibrationFileError(
                    f"{folder / CALIBRATION_FILE}: fitted for another model.onnx (sha256 "
                    f"{calibration.model_sha256[:12]}…, this version's file is {digest[:12]}…)"
                )
    except (CalibrationFileError, OSError) as exc:
        calibration, error = None, str(exc)
        log.error("%s; model %s version %d serves uncalibrated",
                  error, instance.model.name, instance.model.version)  # fmt: skip
    served = replace(instance.model, calibration=calibration)
    return replace(
        instance, model=served, calibration_stamp=stamp, calibration_error=error,
        model_sha256=digest,
    )  # fmt: skip
