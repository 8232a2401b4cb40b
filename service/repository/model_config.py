"""A model's ``config.json`` beside its versions: batching overrides, the version policy and
version labels, read and validated in one place.

``{"version_policy": {"latest": 2}, "labels": {"stable": 1, "canary": 2}, "max_batch_size": 16}``

* ``version_policy``: which versions found on disk are served — ``{"latest": N}`` (the N highest;
  the default is ``{"latest": 1}``, as in Triton and TF Serving), ``{"specific": [1, 3]}``, or
  ``"all"``. A version a label names is served as well, so that ``stable`` can stay on an older
  version while ``latest`` moves on.
* ``labels``: names for versions, usable wherever a version is named. A label answers only once
  its version is loaded; until then it keeps pointing where it did.
* Every other key is a batching option (:class:`~service.batching.BatchingOptions`) overriding
  the server-wide default for this model's versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.batching import BatchingOptions
from service.errors import ModelLoadError

__all__ = ["LABEL", "ModelConfig", "VersionPolicy", "read_model_config"]

LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
"""What a version label looks like: it starts with a letter, so it is never a version number."""


@dataclass(frozen=True)
class VersionPolicy:
    """Which of a model's versions on disk are served (Triton's and TF Serving's names)."""

    kind: str = "latest"
    """``latest``, ``specific`` or ``all``."""
    latest: int = 1
    specific: frozenset[int] = frozenset()

    def select(self, available: Iterable[int]) -> set[int]:
        """The versions of ``available`` this policy serves."""
        versions = sorted(set(available))
        if self.kind == "all":
            return set(versions)
        if self.kind == "specific":
            return set(versions) & self.specific
        return set(versions[-self.latest :])

    def describe(self) -> str:
        """The policy as written in ``config.json``."""
        if self.kind == "all":
            return '"all"'
        if self.kind == "specific":
            return json.dumps({"specific": sorted(self.specific)})
        return json.dumps({"latest": self.latest})


@dataclass(frozen=True)
class ModelConfig:
    """A model's settings: its batching options, version policy and labels."""

    batching: BatchingOptions
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = field(default_factory=dict)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _policy(raw: object, where: str) -> VersionPolicy:
    if raw == "all":
        return VersionPolicy("all")
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, value),) = raw.items()
        if kind == "latest" and _whole(value) and value >= 1:
            return VersionPolicy("latest", latest=value)
        if kind == "specific" and isinstance(value, list) and value and all(map(_whole, value)):
            return VersionPolicy("specific", specific=frozenset(value))
    raise ModelLoadError(
        f'{where}: version_policy must be {{"latest": N}} (N >= 1), {{"specific": [versions]}} '
        f'or "all", got {json.dumps(raw)}'
    )


def _labels(raw: object, where: str) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{where}: labels must be an object of label -> version")
    for label, version in raw.items():
        if not LABEL.fullmatch(label):
            raise ModelLoadError(
                f"{where}: label {label!r} must start with a letter and hold only letters, "
                "digits, '_', '.' and '-' (at most 64)"
            )
        if not _whole(version):
            raise ModelLoadError(f"{where}: label {label!r} must name a version number")
    return dict(raw)


def read_model_config(defaults: BatchingOptions, config_file: Path) -> ModelConfig:
    """The settings in ``config_file`` (``defaults`` and the default policy where it is absent
    or silent). Anything invalid is a :class:`~service.errors.ModelLoadError` naming the file."""
    if not config_file.is_file():
        return ModelConfig(defaults)
    try:
        raw: Any = json.loads(config_file.read_bytes())
    except (ValueError, OSError) as exc:  # also json.JSONDecodeError
        raise ModelLoadError(f"{config_file}: not a JSON object ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{config_file}: not a JSON object of model settings")
    policy = _policy(raw.pop("version_policy"), str(config_file)) if "version_policy" in raw else (
        VersionPolicy()
    )  # fmt: skip
    labels = _labels(raw.pop("labels"), str(config_file)) if "labels" in raw else {}
    try:
        batching = BatchingOptions.model_validate({**defaults.model_dump(), **raw})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ModelLoadError(f"{config_file}: {problems}") from None
    return ModelConfig(batching, policy, labels)
