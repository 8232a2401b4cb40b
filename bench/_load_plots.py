"""The load benchmarks' figures: answers per second over an overload, memory over a soak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plot_overload", "plot_soak"]


def _save(figure: Any, path: Path, title: str) -> None:
    figure.suptitle(title, fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_overload(report: Any, path: Path, title: str) -> None:
    """Answers per second by kind and transport, and the service's RSS, over time; the end of
    the overload and the return to normal marked."""
    rows = report.timeline
    t = [r["t"] for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    styles = {"admitted": "-", "shed": "--", "other": ":"}
    colours = {"rest": "tab:blue", "grpc": "tab:orange"}
    for kind, style in styles.items():
        for transport, colour in colours.items():
            values = [r[f"{kind}_{transport}_per_s"] for r in rows]
            if kind != "other" or any(values):
                label = f"{kind} {'REST' if transport == 'rest' else 'gRPC'}"
                top.step(t, values, style, where="post", color=colour, label=label)
    end = report.plan.seconds
    for axis in (top, bottom):
        axis.axvline(end, color="grey", linestyle="--", linewidth=1)
        if report.recovery_s is not None:
            axis.axvline(end + report.recovery_s, color="green", linestyle=":", linewidth=1)
    top.set_ylabel("answers/s")
    top.set_yscale("symlog", linthresh=10)
    top.set_ylim(bottom=0)
    top.legend(fontsize=7, ncol=2, title="grey: overload ends; green: normal again "
               f"({report.plan.streak} in a row)", title_fontsize=7)  # fmt: skip
    bottom.plot(t, [r["rss_mb"] or None for r in rows], color="purple")
    bottom.set_ylabel("RSS, MB")
    bottom.set_xlabel("seconds since the overload began")
    _save(figure, path, title)


def plot_soak(report: Any, path: Path, title: str) -> None:
    """The service's RSS against requests served, the end of the warm-up marked."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot([s[0] for s in report.samples], [s[1] for s in report.samples], marker=".")
    axis.axvline(report.warm_up_requests, color="grey", linestyle="--", linewidth=1,
                 label="end of warm-up")  # fmt: skip
    axis.set_xlabel("requests")
    axis.set_ylabel("RSS (serving process + children), MB")
    axis.legend(fontsize=7)
    _save(figure, path, title)
