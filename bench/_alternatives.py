"""What the benchmarks that weigh an alternative server share: the alternative installed beside
the project's own packages, and a grouped bar plot of the medians."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["bar_plot", "installed"]


def installed(home: Path, requirement: str, package: str) -> Path:
    """The folder holding ``requirement`` (pip ``--target``, for the project's own Python, on
    first use): put it on ``PYTHONPATH``."""
    target = home / "site"
    if not (target / package).exists():
        print(f"installing {requirement} into {target} (first run only) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
             requirement],
            check=True,
        )  # fmt: skip
    return target


def bar_plot(
    series: dict[str, list[float]],
    labels: list[str],
    *,
    ylabel: str,
    title: str,
    path: Path,
    label_size: int = 8,
) -> None:
    """One bar per series at each label, series side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(max(7, len(labels) * 1.2), 4.5))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        axis.bar([k + i * width for k in range(len(labels))], values, width, label=name)
    axis.set_xticks([k + 0.4 - width / 2 for k in range(len(labels))])
    axis.set_xticklabels(labels, fontsize=label_size)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
