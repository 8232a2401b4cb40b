"""Small statistics and report helpers shared by the load benchmarks."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
import onnxruntime as ort

__all__ = ["environment", "markdown_table", "mb", "percentile_ms", "rounded"]


def percentile_ms(seconds: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile of durations in seconds, in milliseconds (``None`` if empty)."""
    values = list(seconds)
    return float(np.percentile(values, q)) * 1e3 if values else None


def rounded(value: float | None) -> float | None:
    """``value`` rounded to 0.01 (``None`` stays ``None``): a reported latency in ms."""
    return None if value is None else round(value, 2)


def mb(size: int) -> float:
    """Bytes in MB (10⁶ bytes), rounded to 0.1."""
    return round(size / 1e6, 1)


def environment() -> str:
    """Date, machine, CPUs and onnxruntime version: the first line of a report."""
    return (
        f"{date.today().isoformat()} · {platform.machine()} · {os.cpu_count()} CPUs · "
        f"onnxruntime {ort.__version__}"
    )


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def markdown_table(rows: Sequence[tuple[str, object]]) -> str:
    """A two-column Markdown table: what, value."""
    lines = ["| measure | value |", "|---|---:|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    return "\n".join(lines)
