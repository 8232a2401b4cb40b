"""The report's figures: reliability diagram, confusion matrix, per-class accuracy, and the
reliability before/after a fitted temperature (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Panel", "reliability_grid", "write_figures"]

Panel = tuple[str, list[dict[str, Any]]]
"""A reliability diagram's title and bins (``report.json``'s ``reliability`` rows)."""


def pyplot() -> Any:
    from service.evaluate.extras import require

    matplotlib = require("matplotlib", "the figures", instead="--no-figures")
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _title(data: dict[str, Any]) -> str:
    dataset = data["dataset"]
    label = "SYNTHETIC data" if dataset["name"] == "synthetic" else dataset["name"]
    return f"{data['model']['name']} on {label}, {dataset['images']:,} images"


def reliability_panels(top: Any, bottom: Any, bins: list[dict[str, Any]], title: str) -> None:
    """Draw a reliability diagram on two axes: accuracy per confidence bin (bars) against the
    bin's mean confidence (red) and the diagonal above, images per bin below."""
    centres = np.array([(b["from"] + b["to"]) / 2 for b in bins])
    width = bins[0]["to"] - bins[0]["from"]
    accuracy = np.array([b["accuracy"] or 0.0 for b in bins])
    confidence = np.array([b["confidence"] or 0.0 for b in bins])
    counts = np.array([b["images"] for b in bins])
    filled = counts > 0
    top.bar(centres[filled], accuracy[filled], width, edgecolor="black", label="accuracy")
    top.hlines(
        confidence[filled], (centres - width / 2)[filled], (centres + width / 2)[filled],
        colors="tab:red", linewidth=2.5, label="mean confidence",
    )  # fmt: skip
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left")
    bottom.bar(centres, counts, width, color="gray", edgecolor="black")
    bottom.set(xlabel="confidence (top softmax probability)", ylabel="images")


def reliability(data: dict[str, Any], path: Path) -> None:
    """The reliability diagram of the evaluation (see :func:`reliability_panels`)."""
    plt = pyplot()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 6.5), sharex=True, height_ratios=(3, 1), constrained_layout=True
    )
    ece = data["metrics"]["ece"]
    title = f"Reliability: {_title(data)}\nECE (15 bins) = {ece:.4f}"
    reliability_panels(top, bottom, data["reliability"], title)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def reliability_grid(
    rows: Sequence[tuple[Panel, Panel]], path: Path, *, title: str | None = None, dpi: int = 110
) -> None:
    """Reliability diagrams (see :func:`reliability_panels`) two to a row, each row's pair on the
    same scales (e.g. before and after a temperature), written to ``path``."""
    plt = pyplot()
    figure, axes = plt.subplots(
        2 * len(rows), 2, figsize=(11, 6.5 * len(rows)), sharex=True, sharey="row",
        height_ratios=(3, 1) * len(rows), constrained_layout=True,
    )  # fmt: skip
    for row, pair in enumerate(rows):
        for column, (panel_title, bins) in enumerate(pair):
            top, bottom = axes[2 * row, column], axes[2 * row + 1, column]
            reliability_panels(top, bottom, bins, panel_title)
    if title is not None:
        figure.suptitle(title, fontsize=11)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def calibration(data: dict[str, Any], path: Path) -> None:
    """Reliability diagrams of the measure rows before (T = 1) and after temperature scaling,
    side by side."""
    section = data["calibration"]

    def panel(when: str) -> Panel:
        figures = section[when]
        title = f"{when}: T = {figures['temperature']:.4g}, ECE (15 bins) = {figures['ece']:.4f}"
        return title, section["reliability"][when]

    rows = section["measured_on"]["rows"]
    same = " (the fitted rows: optimistic)" if section["same_rows"] else ""
    title = f"Temperature scaling: {_title(data)}; measured on {rows:,} rows{same}"
    reliability_grid([(panel("before"), panel("after"))], path, title=title)


def confusion(data: dict[str, Any], path: Path) -> None:
    """Row-normalised confusion matrix (label × prediction), counts written in small ones."""
    plt = pyplot()
    counts = np.array(data["confusion_matrix"]["counts"], dtype=np.int64)
    names = [row["name"] for row in data["per_class"]]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = max(5.0, 0.55 * len(names) + 2.5)
    figure, axis = plt.subplots(figsize=(size + 1, size), constrained_layout=True)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, label="share of the label's images")
    ticks = np.arange(len(names))
    axis.set_xticks(ticks, names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(ticks, names, fontsize=8)
    axis.set(xlabel="prediction", ylabel="label")
    axis.set_title(f"Confusion matrix: {_title(data)}", fontsize=10)
    if len(names) <= 20:
        for (row, column), count in np.ndenumerate(counts):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def per_class(data: dict[str, Any], path: Path) -> None:
    """Top-1 accuracy per class, with the overall accuracy as a line."""
    plt = pyplot()
    rows = data["per_class"]
    figure, axis = plt.subplots(figsize=(max(6.0, 0.6 * len(rows) + 2), 4), constrained_layout=True)
    axis.bar([r["name"] for r in rows], [r["accuracy"] or 0.0 for r in rows], edgecolor="black")
    overall = data["metrics"]["accuracy"]
    axis.axhline(overall, color="tab:red", linestyle="--", label=f"overall {overall:.1%}")
    axis.set(ylabel="top-1 accuracy", ylim=(0, 1.02))
    axis.set_title(f"Per-class accuracy: {_title(data)}", fontsize=10)
    axis.tick_params(axis="x", rotation=45, labelsize=8)
    axis.legend()
    figure.savefig(path, dpi=110)
    plt.close(figure)


FIGURES = {"reliability.png": reliability, "confusion.png": confusion, "per_class.png": per_class}
EXTRA_FIGURES = {"calibration.png": calibration}
MAX_CLASSES_DRAWN = 100
"""Past this many classes the per-class figures would be unreadable (and huge): the report's
tables hold them."""


def figure_names(classes: int, calibrated: bool = False) -> list[str]:
    """The figures drawn for a model with ``classes`` classes (``calibrated``: with a fitted
    temperature's section)."""
    names = list(FIGURES) if classes <= MAX_CLASSES_DRAWN else ["reliability.png"]
    return names + (["calibration.png"] if calibrated else [])


def write_figures(data: dict[str, Any], out: Path) -> list[str]:
    """Write the figures of :func:`figure_names` into ``out``; their file names."""
    names = figure_names(len(data["per_class"]), "calibration" in data)
    for name in names:
        (FIGURES | EXTRA_FIGURES)[name](data, out / name)
    return names
