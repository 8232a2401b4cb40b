"""Figures: one run's learning curves, and several runs side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

__all__ = ["plot_comparison", "plot_history"]

History = Mapping[str, Sequence[float]]
PANELS = (("accuracy", "Top-1 accuracy"), ("top5", "Top-5 accuracy"))


def _epochs(history: History) -> list[int]:
    return list(range(1, len(history["accuracy"]) + 1))


def plot_history(history: History, path: Path, *, title: str) -> None:
    """Top-1 and top-5 accuracy per epoch, training and validation, in two panels."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for axis, (metric, label) in zip(axes, PANELS, strict=True):
        axis.plot(_epochs(history), history[metric], "o-", label="training")
        axis.plot(_epochs(history), history[f"val_{metric}"], "s-", label="validation")
        axis.set(xlabel="epoch", ylabel=label, title=label, ylim=(0, 1.02))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_comparison(histories: Mapping[str, History], path: Path, *, title: str) -> None:
    """Each run's validation (solid) and training (dashed) top-1 and top-5 accuracy."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (metric, label) in zip(axes, PANELS, strict=True):
        for colour, (name, history) in zip(colours, histories.items(), strict=False):
            epochs = _epochs(history)
            axis.plot(epochs, history[f"val_{metric}"], "o-", color=colour, label=f"{name} (val)")
            axis.plot(
                epochs, history[metric], "--", color=colour, alpha=0.7, label=f"{name} (train)"
            )
        axis.set(xlabel="epoch", ylabel=label, title=label, ylim=(0, 1.02))
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
