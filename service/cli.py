"""``python -m service``: parse settings, load models, serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import CliApp

from service.errors import ModelLoadError
from service.settings import Settings

__all__ = ["main"]


def configure_logging(level: str) -> None:
    """One log format for the service, uvicorn and onnxruntime's Python side."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1: a model cannot be served, 2: bad settings)."""
    try:
        settings = CliApp.run(Settings, cli_args=list(sys.argv[1:] if argv is None else argv))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from service.server import build_dataplane, serve

    try:
        plane = build_dataplane(settings)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    asyncio.run(serve(settings, plane))
    return 0
