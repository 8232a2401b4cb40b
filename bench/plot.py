"""The benchmark's figure: throughput and p99 latency against requests in flight, per path,
with the in-process ceiling and the Python-front bound of the path's transport as lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plot"]


PEERS = ("MLServer", "KServe")


def plot(
    ceiling: Any,
    rows: list[Any],
    path: Path,
    title: str,
    bounds: dict[str, float] | None = None,
) -> None:
    """``bounds``: the Python-front bound in requests a second, by transport (``gRPC``,
    ``REST``), drawn as a horizontal line on each path of that transport."""
    ours = [r for r in rows if r.server == "ours"]
    names = list(dict.fromkeys(r.route for r in ours))
    figure, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), sharex=True)
    for column, name in enumerate(names):
        top, bottom = axes[0][column], axes[1][column]
        series = {
            f"ours, batching {b}": [r for r in ours if r.route == name and r.batching == b]
            for b in ("on", "off")
        }
        peer_route = "V2 gRPC raw" if "gRPC" in name else "V2 REST JSON"
        for peer in PEERS:
            series[f"{peer} ({peer_route})"] = [
                r for r in rows if r.server == peer and r.route == peer_route
            ]
        null = "null gRPC" if "gRPC" in name else "null REST"
        series[f"nginx {null} (load generator)"] = [r for r in rows if r.route == null]
        for label, points in series.items():
            if not points:
                continue
            x = [p.concurrency for p in points]
            style = "--" if label.startswith(PEERS) else ":" if "nginx" in label else "-"
            top.plot(x, [p.result.rps for p in points], style, marker="o", label=label)
            bottom.plot(x, [p.result.p99_ms for p in points], style, marker="o", label=label)
        top.axhline(ceiling.best_images_per_second, color="grey", linewidth=1,
                    label="onnxruntime in-process (ceiling)")  # fmt: skip
        transport = "gRPC" if "gRPC" in name else "REST"
        if bounds and transport in bounds:
            top.axhline(bounds[transport], color="black", linestyle="-.", linewidth=1,
                        label=f"Python-front bound ({transport})")  # fmt: skip
        top.set_title(name)
        top.set_yscale("log")
        bottom.set_yscale("log")
        bottom.set_xscale("log", base=2)
        bottom.set_xlabel("requests in flight")
        if column == 0:
            top.set_ylabel("requests/s (1 image each)")
            bottom.set_ylabel("p99 latency, ms")
        top.legend(fontsize=7)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
