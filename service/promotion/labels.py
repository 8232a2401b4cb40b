"""Moving a version label in a model's ``config.json``, and telling a running service.

The file is rewritten atomically (a temporary file in the same folder, then a rename) with every
other setting kept, and checked by the same reader the service uses before it replaces the old
one: a promotion can never leave a model with a settings file the service refuses.
"""

from __future__ import annotations

import json
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


def _config_error(path: Path, exc: Exception) -> PromotionError:
    return PromotionError(str(exc) if isinstance(exc, ModelLoadError) else f"{path}: {exc}")


def label_version(folder: Path, label: str) -> int | None:
    """The version ``label`` names in ``folder/config.json`` (``None``: no such label)."""
    path = folder / CONFIG_FILE
    try:
        version = read_model_config(BatchingOptions.model_validate({}), path).labels.get(label)
    except (ModelLoadError, OSError) as exc:
        raise _config_error(path, exc) from None
    return int(version) if version is not None else None


def move_label(folder: Path, label: str, version: int) -> None:
    """Point ``label`` at ``version`` in ``folder/config.json``, every other setting kept."""
    path = folder / CONFIG_FILE
    try:
        settings: Any = json.loads(path.read_bytes()) if path.exists() else {}
    except (OSError, ValueError) as exc:
        raise _config_error(path, exc) from None
    if not isinstance(settings, dict):
        raise PromotionError(f"{path}: not a JSON object")
    labels = settings.get("labels", {})
    if isinstance(labels, dict):  # else left as it is, for the check below to refuse
        labels = labels | {label: version}
    text = json.dumps(settings | {"labels": labels}, indent=2) + "\n"
    # The result is checked by the service's own reader first (the whole file: what was
    # there and the label): refused, the old file stays.
    check = partial(read_model_config, BatchingOptions.model_validate({}))
    try:
        write_atomically(path, text, check)
    except (ModelLoadError, OSError) as exc:
        raise PromotionError(f"{path} not changed: {exc}") from None


def notify(server: str, model: str, api_key: str | None = None, timeout: float = 60.0) -> None:
    """Ask the service at ``server`` (its REST base URL) to load ``model`` now (Triton's
    repository API): in poll mode it looks at the files at once, so the label moves now."""
    import httpx

    from service.client import RequestError, RestClient

    try:
        with RestClient(server, timeout=timeout, api_key=api_key) as client:
            client.load_model(model)
    except RequestError as exc:
        raise PromotionError(
            f"{server}: the load of {model!r} answered {exc.status}: {exc.message}"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        raise PromotionError(f"{server}: cannot be reached ({exc})") from None
