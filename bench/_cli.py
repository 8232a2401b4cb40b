"""Command-line arguments shared by the benchmarks that drive a served model."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["counts", "load_parser"]


def load_parser(description: str | None, *, seconds: float) -> argparse.ArgumentParser:
    """A parser with what every load benchmark on a served model takes: the model repository,
    the model's name and the measured seconds per point (``seconds`` by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="cifar10")
    parser.add_argument("--seconds", type=float, default=seconds, help="measured seconds per point")
    return parser


def counts(text: str) -> list[int]:
    """A comma-separated list of whole numbers, such as numbers of requests in flight."""
    return [int(part) for part in text.split(",")]
