"""The default model ``make serve`` starts with when the repository has none."""

from __future__ import annotations

from pathlib import Path

from training.data import locate_cifar10
from training.export import export_run
from training.model import ModelConfig
from training.train import TrainConfig, train

__all__ = ["QUICKSTART", "quickstart_model"]

QUICKSTART = TrainConfig(
    epochs=3,
    batch_size=128,
    max_samples=10_000,
    max_val_samples=2_000,
    model=ModelConfig(width=0.5),
)
"""A budget that trains in two to three minutes on two CPU cores (it is a start, not a result:
train the full configuration for the published accuracy)."""


def quickstart_model(
    repository: Path,
    name: str = "cifar10",
    *,
    data: str | None = None,
    out: Path,
    run: Path | None = None,
) -> Path | None:
    """Unless ``repository/name`` already has a model, export version 1: the finished training
    ``run`` when given, else a quickstart model trained into ``out`` on the real CIFAR-10 when
    found, else on the synthetic stand-in. Returns the new model's path."""
    existing = sorted((repository / name).glob("*/model.onnx"))
    if existing:
        print(f"{repository / name} already has a model ({existing[-1]}); nothing to do.")
        return None
    if run is not None:
        path, difference = export_run(run, repository, name, 1)
        print(f"exported {run} as {path}; parity max |Δlogit| = {difference:.3g}")
        return path
    source = data if data is not None else ("synthetic" if locate_cifar10() is None else None)
    if data is None and source == "synthetic":
        print(
            "No CIFAR-10 found in ./data/ or ~/.keras/datasets/: the quickstart model is "
            "trained on the SYNTHETIC stand-in (default difficulty)."
        )
    train(TrainConfig(**{**QUICKSTART.__dict__, "data": source}), out, verbose=2)
    path, difference = export_run(out, repository, name, 1)
    print(f"exported {path}; parity max |Δlogit| = {difference:.3g}")
    return path
