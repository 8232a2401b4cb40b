"""Moving a version label in a model's ``config.json``, and telling a running service.

The file is rewritten atomically (a temporary file in the same folder, then a rename) with every
other setting kept, and checked by the same reader the service uses before it replaces the old
one: a promotion can never leave a model with a settings file the service refuses.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from service.atomic_files import write_atomically
from service.batching import BatchingOptions
from service.errors import ModelLoadError
from service.repository import CONFIG_FILE, read_model_config

__all__ = ["PromotionError", "label_version", "move_label", "notify"]


class PromotionError(Exception):
    """A promotion that cannot be carried out (exit status 2)."""


def _settings(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        read_model_config(BatchingOptions.model_validate({}), path)
        raw: dict[str, Any] = json.loads(path.read_bytes())
    except (ModelLoadError, OSError, ValueError) as exc:
        raise PromotionError(f"{path}: {exc}") from None
    return raw


def label_version(folder: Path, label: str) -> int | None:
    """The version ``label`` names in ``folder/config.json`` (``None``: no such label)."""
    version = _settings(folder).get("labels", {}).get(label)
    return int(version) if version is not None else None


def move_label(folder: Path, label: str, version: int) -> int | None:
    """Point ``label`` at ``version`` in ``folder/config.json``; the version it named before."""
    settings = _settings(folder)
    labels = dict(settings.get("labels", {}))
    previous = labels.get(label)
    labels[label] = version
    text = json.dumps(settings | {"labels": labels}, indent=2) + "\n"
    # Checked by the service's own reader first: refused, the old file stays.
    check = partial(read_model_config, BatchingOptions.model_validate({}))
    write_atomically(folder / CONFIG_FILE, text, check)
    return int(previous) if previous is not None else None


def notify(server: str, model: str, api_key: str | None = None, timeout: float = 60.0) -> None:
    """Ask the service at ``server`` (its REST base URL) to load ``model`` now (Triton's
    repository API): in poll mode it looks at the files at once, so the label moves now."""
    request = urllib.request.Request(
        f"{server.rstrip('/')}/v2/repository/models/{model}/load", data=b"{}", method="POST",
        headers={"Content-Type": "application/json"} | ({"X-API-Key": api_key} if api_key else {}),
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise PromotionError(
            f"{server}: the load of {model!r} answered {exc.code}: {detail}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise PromotionError(f"{server}: cannot be reached ({exc})") from None
