"""Settings of a command from its arguments, with one error line instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, CliApp, SettingsError

__all__ = ["settings_from_args"]

S = TypeVar("S", bound=BaseSettings)


def settings_from_args(kind: type[S], argv: Sequence[str] | None) -> S | None:
    """``kind`` from ``argv`` (the process's arguments when ``None``), its variables and
    defaults; ``None`` after printing ``error: invalid settings: …`` (exit status 2)."""
    try:
        return CliApp.run(kind, cli_args=list(sys.argv[1:] if argv is None else argv))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
    except SettingsError as exc:  # e.g. a JSON option that is not JSON
        print(f"error: invalid settings: {exc}", file=sys.stderr)
    return None
