"""``calibration.json`` in a version folder: what the service applies, and where it came from.

``{"format": 1, "method": "temperature_scaling", "temperature": 0.61, "model_sha256": "…",
"fitted_on": {…}, "measured_on": {…}, "before": {…}, "after": {…}, "created": "…"}``

Only ``temperature`` changes what is served; the rest records how it was fitted. A calibration
names the SHA-256 of the ``model.onnx`` it was fitted for: a version whose file has changed since
serves uncalibrated (see :mod:`service.control`). Files are written atomically (a temporary file
in the same folder, then a rename), so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.atomic_files import write_atomically
from service.calibration.temperature import MAX_TEMPERATURE, MIN_TEMPERATURE

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "CalibrationFileError",
    "file_sha256",
    "read_calibration",
    "write_calibration",
]

CALIBRATION_FILE = "calibration.json"
"""Beside ``model.onnx`` in a version folder."""


class CalibrationFileError(Exception):
    """A ``calibration.json`` that cannot be read or is not a valid calibration."""


class Calibration(BaseModel):
    """A fitted temperature and the record of its fit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = Field(default=1, description="The file format's version.")
    method: Literal["temperature_scaling"] = "temperature_scaling"
    temperature: float = Field(
        ge=MIN_TEMPERATURE,
        le=MAX_TEMPERATURE,
        allow_inf_nan=False,
        description="Served probabilities are softmax(logits / temperature).",
    )
    model_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the model.onnx it was fitted for; unchecked when absent.",
    )
    fitted_on: dict[str, Any] = Field(default_factory=dict, description="The rows of the fit.")
    measured_on: dict[str, Any] | None = Field(
        default=None,
        description="The rows the before/after figures come from; None: the fitted rows.",
    )
    before: dict[str, float] | None = Field(default=None, description="Figures at temperature 1.")
    after: dict[str, float] | None = Field(
        default=None, description="Figures at the fitted temperature."
    )
    iterations: int | None = None
    created: str = Field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"),
        description="When it was fitted (UTC, ISO 8601).",
    )

    def applies_to(self, sha256: str) -> bool:
        """Whether it applies to the ``model.onnx`` whose SHA-256 is ``sha256``: the one it was
        fitted for, or any when it names none."""
        return self.model_sha256 is None or self.model_sha256 == sha256


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_calibration(folder: Path) -> Calibration | None:
    """The calibration in ``folder`` (``None`` without one); a file that cannot be read or is
    not a valid calibration raises :class:`CalibrationFileError` naming the file and the field."""
    path = folder / CALIBRATION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationFileError(f"{path}: cannot be read ({exc})") from None
    try:
        return Calibration.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(map(str, error["loc"])) or "the file"
        raise CalibrationFileError(f"{path}: {where}: {error['msg']}") from None


def write_calibration(folder: Path, calibration: Calibration) -> Path:
    """Write ``calibration`` to ``folder/calibration.json`` atomically; its path."""
    path = folder / CALIBRATION_FILE
    text = json.dumps(calibration.model_dump(mode="json"), indent=2) + "\n"
    write_atomically(path, text)
    return path
