"""One model's versions as the model manager tracks them: which serve, which load, which
drain, which failed and why — and what that makes each version's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from service.batching import BatchingOptions, DynamicBatcher
from service.execution.runs import ModelCall, ModelOutput
from service.repository import (
    FileStamp,
    ModelConfig,
    ServedModel,
    VersionState,
    VersionStatus,
)

__all__ = ["Instance", "ModelVersions", "settled"]

Batcher = DynamicBatcher[ModelCall, ModelOutput]


def settled(
    now: FileStamp | None,
    before: FileStamp | None,
    applied: FileStamp | None,
    *,
    first_look: bool,
) -> FileStamp | None:
    """What a file counts as at this look: as it is when there was no look before, or when it
    is unchanged since; while it changes (being copied, rewritten, or gone at one look only),
    what is applied. The one rule for model files, ``config.json`` and ``calibration.json``."""
    return now if first_look or now == before else applied


@dataclass(frozen=True)
class Instance:
    """A loaded version: its spec, its batcher, and the file it was loaded from."""

    model: ServedModel
    batcher: Batcher
    stamp: FileStamp
    calibration_stamp: FileStamp | None = None
    """The ``calibration.json`` last read for it (``None``: none read)."""
    calibration_error: str = ""
    """Why that file was refused (the version then serves uncalibrated)."""
    model_sha256: str | None = None
    """The SHA-256 of the file it was loaded from, once a calibration asked for it."""

    def matches(self, stamp: FileStamp, batching: BatchingOptions) -> bool:
        """Loaded from this file with these options (else it must be reloaded)."""
        return self.stamp == stamp and self.model.batching == batching


@dataclass
class ModelVersions:
    """Everything the manager knows of one model."""

    name: str
    config: ModelConfig | None = None
    config_stamp: FileStamp | None = None
    config_error: str = ""
    """Why the current ``config.json`` was refused (the previous settings still apply)."""
    wanted: bool = True
    """Whether the model should be loaded (explicit mode: the API says; otherwise always)."""
    serving: dict[int, Instance] = field(default_factory=dict)
    loading: set[int] = field(default_factory=set)
    retiring: dict[int, int] = field(default_factory=dict)
    """Instance → version, for instances draining before they are unloaded."""
    failed: dict[int, tuple[tuple[FileStamp, BatchingOptions], str]] = field(default_factory=dict)
    """Version → (what failed to load, why); not retried until the file or options change."""
    desired: set[int] = field(default_factory=set)
    """The versions the policy and the labels ask for, at the last look."""
    labels: dict[str, int] = field(default_factory=dict)
    """The labels in force: each on a serving version (see ``config.labels`` for the wish)."""
    published: set[int] = field(default_factory=set)
    """The versions whose state was last published (a version gone since is cleared)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def statuses(self) -> list[VersionStatus]:
        """Each known version's state (a reload in progress or failed beside a serving
        instance leaves it READY, with the reason of a failure)."""
        versions = set(self.serving) | self.loading | set(self.retiring.values()) | set(self.failed)
        found = []
        for version in sorted(versions):
            reason = self.failed[version][1] if version in self.failed else ""
            if version in self.serving:
                if reason:
                    reason = f"a reload failed, the loaded file still serves: {reason}"
                elif self.serving[version].calibration_error:
                    reason = f"serving uncalibrated: {self.serving[version].calibration_error}"
                calibration = self.serving[version].model.calibration
                temperature = calibration.temperature if calibration is not None else None
                found.append(VersionStatus(version, VersionState.READY, reason, temperature))
            elif version in self.loading:
                found.append(VersionStatus(version, VersionState.LOADING))
            elif version in self.retiring.values():
                found.append(VersionStatus(version, VersionState.UNLOADING))
            else:
                found.append(VersionStatus(version, VersionState.FAILED, reason))
        return found
