"""What the lifecycle tests share: publishing a version as the exporter does, reading the
repository index, and waiting for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.service.onnx_models import LinearModel, write_linear_model


def publish(root: Path, model: str, version: int, *, seed: int) -> LinearModel:
    """Write ``<root>/<model>/<version>/model.onnx`` the way the exporter does: staged beside
    the version folders, then renamed into place in one step."""
    staging = root / model / f".staging-{version}"
    reference = write_linear_model(staging / "model.onnx", seed=seed)
    staging.rename(root / model / str(version))
    return reference


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout:.0f} s: {what or condition}")


def index(url: str) -> list[dict[str, Any]]:
    """The repository index (Triton's ``POST /v2/repository/index``)."""
    entries: list[dict[str, Any]] = httpx.post(f"{url}/v2/repository/index", timeout=30).json()
    return entries


def states(url: str, model: str | None = None) -> dict[str, str]:
    """Version → state in the index, of ``model`` (of every model when ``None``)."""
    return {e["version"]: e["state"] for e in index(url) if model in (None, e["name"])}
