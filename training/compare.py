"""The experiment that motivates stable softmax: identical runs that differ only in the top
activation, one figure and one table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.plots import plot_comparison
from training.train import TrainConfig, dataset_details, dataset_label, train

__all__ = ["compare"]

COLUMNS = (
    ("best val top-1", "best_val_accuracy"),
    ("best val top-5", "best_val_top5"),
    ("final train top-1", "final_accuracy"),
    ("final val top-1", "final_val_accuracy"),
    ("final val loss", "final_val_loss"),
    ("seconds", "seconds"),
)


def _table(
    summaries: dict[str, dict[str, Any]], config: TrainConfig, dataset: str, details: str
) -> str:
    described = f"**{dataset}** ({details})" if details else f"**{dataset}**"
    lines = [
        f"Dataset: {described} · epochs {config.epochs} · batch {config.batch_size} · "
        f"training images {config.max_samples or 'all'} · width {config.model.width} · "
        f"seed {config.seed}",
        "",
        "| top activation | " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, summary in summaries.items():
        cells = [
            f"{summary[key]:.4f}"
            if isinstance(summary[key], float) and key != "seconds"
            else str(summary[key])
            for _, key in COLUMNS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(activations: list[str], config: TrainConfig, out: str | Path) -> dict[str, Any]:
    """Train one model per activation into ``out/<activation>/`` with the same data, seed and
    settings; write ``out/comparison.png`` and ``out/comparison.md``."""
    out = Path(out)
    summaries: dict[str, dict[str, Any]] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    for activation in activations:
        run = out / activation
        summaries[activation] = train(replace(config, top_activation=activation), run)
        histories[activation] = json.loads((run / "history.json").read_text())
    first = next(iter(summaries.values()))
    dataset, parameters = first["dataset"], first.get("dataset_parameters", {})
    label = dataset_label(dataset, parameters)
    title = f"Top activation comparison on {label}\n(validation solid, training dashed)"
    plot_comparison(histories, out / "comparison.png", title=title)
    details = dataset_details(dataset, parameters)
    (out / "comparison.md").write_text(_table(summaries, config, dataset, details))
    return summaries
