"""An evaluation as ``report.json`` (every figure, machine-readable) and ``report.md``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from service.evaluate.metrics import ECE_BINS, Tally
from service.evaluate.runner import Evaluation

__all__ = ["Bins", "markdown", "reliability_table", "report", "write_report"]


class Bins(Protocol):
    """Per confidence bin sums: a :class:`Tally`, or a calibration's ``QualitySums``."""

    @property
    def bin_rows(self) -> npt.NDArray[np.int64]: ...
    @property
    def bin_correct(self) -> npt.NDArray[np.int64]: ...
    @property
    def bin_confidence(self) -> npt.NDArray[np.float64]: ...


def _ratios(numerator: Any, denominator: Any) -> list[float | None]:
    return [float(n / d) if d else None for n, d in zip(numerator, denominator, strict=True)]


def _per_class(tally: Tally, names: tuple[str, ...]) -> list[dict[str, Any]]:
    columns = zip(
        names,
        tally.rows.tolist(),
        _ratios(tally.correct, tally.rows),
        _ratios(tally.in_top_k, tally.rows),
        _ratios(tally.loss_sum, tally.loss_rows),
        strict=True,
    )
    keys = ("name", "images", "accuracy", "top_5_accuracy", "mean_loss")
    return [{"class_id": i} | dict(zip(keys, row, strict=True)) for i, row in enumerate(columns)]


def reliability_table(bins: Bins) -> list[dict[str, Any]]:
    """Per confidence bin: its edges, images, accuracy and mean confidence."""
    edges = np.linspace(0, 1, ECE_BINS + 1).tolist()
    columns = zip(
        edges[:-1],
        edges[1:],
        bins.bin_rows.tolist(),
        _ratios(bins.bin_correct, bins.bin_rows),
        _ratios(bins.bin_confidence, bins.bin_rows),
        strict=True,
    )
    keys = ("from", "to", "images", "accuracy", "confidence")
    return [dict(zip(keys, row, strict=True)) for row in columns]


def report(evaluation: Evaluation, calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the evaluation measured, as JSON-ready data (and a fitted ``calibration``,
    see :meth:`~service.evaluate.calibrate.FittedCalibration.section`)."""
    tally = evaluation.tally
    return {
        "dataset": evaluation.dataset,
        "model": evaluation.model,
        "loss": {
            "name": evaluation.loss.name,
            "reduction": evaluation.loss.reduction,
            "input": evaluation.loss.input,
            "options": evaluation.loss.options,
            "value": evaluation.loss_value,
        },
        "metrics": tally.metrics()
        | {"mean_confidence": float(tally.bin_confidence.sum() / max(tally.total, 1))},
        "per_class": _per_class(tally, evaluation.class_names),
        "confusion_matrix": {
            "rows": "label",
            "columns": "prediction",
            "counts": tally.confusion.tolist(),
        },
        "reliability": reliability_table(tally),
        "run": evaluation.run | {"finished": datetime.now(UTC).isoformat(timespec="seconds")},
    } | ({} if calibration is None else {"calibration": calibration})


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def markdown(data: dict[str, Any], figures: list[str]) -> str:
    """A readable summary of :func:`report`'s data."""
    dataset, loss, metrics, run = data["dataset"], data["loss"], data["metrics"], data["run"]
    split = f" ({dataset['split']} split)" if dataset.get("split") else ""
    lines = [f"# Evaluation of {data['model']['name']} on {dataset['name']}{split}", ""]
    if dataset["name"] == "synthetic":
        lines += ["**Synthetic stand-in data, not CIFAR-10.**", ""]
    lines += [
        f"Source: `{dataset['source']}` · {dataset['images']:,} images · model "
        f"`{json.dumps(data['model'])}`",
        "",
        "| loss | value | accuracy | top-5 | ECE (15 bins) | mean confidence |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {loss['name']} ({loss['reduction']}, from {loss['input']}) | {loss['value']:.6g} | "
        f"{_percent(metrics['accuracy'])} | {_percent(metrics['top_5_accuracy'])} | "
        f"{metrics['ece']:.4f} | {_percent(metrics['mean_confidence'])} |",
        "",
        "| class | images | accuracy | top-5 | mean loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in data["per_class"]:
        mean_loss = "–" if row["mean_loss"] is None else f"{row['mean_loss']:.4g}"
        lines.append(
            f"| {row['class_id']} {row['name']} | {row['images']:,} | "
            f"{_percent(row['accuracy'])} | {_percent(row['top_5_accuracy'])} | {mean_loss} |"
        )
    if dataset.get("note"):
        lines += ["", f"Note: {dataset['note']}."]
    if data["model"].get("calibration_note"):
        temperature = data["model"]["calibration_temperature"]
        lines += [
            "",
            f"Temperature applied: {temperature:.4g} ({data['model']['calibration_note']}).",
        ]
    if "calibration" in data:
        lines += _calibration(data["calibration"])
    lines += [""] + [f"![{name}]({name})" for name in figures]
    lines += [
        "",
        f"Engine {run['engine']}: workers {run.get('workers') or run.get('actors') or 'auto'}, "
        f"{run['threads_per_worker']} thread(s) each; {run['chunks']} chunk(s) of at most "
        f"{run['chunk_size']} rows; {run['seconds']:.2f} s, {run['images_per_second']:,} "
        "images/s.",
    ]
    return "\n".join(lines) + "\n"


def _calibration(section: dict[str, Any]) -> list[str]:
    """The temperature-scaling section: the fit, and a before/after table."""
    fitted, measured = section["fitted_on"], section["measured_on"]
    where = (
        "the same rows"
        if section["same_rows"]
        else f"the other {measured['rows']:,} rows (split seed {fitted['split_seed']})"
    )
    lines = [
        "",
        "## Calibration (temperature scaling)",
        "",
        f"T = {section['temperature']:.4f}, fitted by NLL on {fitted['rows']:,} rows "
        f"(calibration split {fitted['calibration_split']:g}, {section['iterations']} "
        f"iterations), measured on {where}.",
    ]
    if section["same_rows"]:
        lines += ["", "**Fitted and measured on the same rows: optimistic.**"]
    if section["at_bound"]:
        lines += ["", "**The fit stopped at the temperature's bound: the minimum lies beyond.**"]
    lines += [
        "",
        "| | T | NLL | ECE (15 bins) | Brier | accuracy | mean confidence |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for when in ("before", "after"):
        row = section[when]
        lines.append(
            f"| {when} | {row['temperature']:.4g} | {row['nll']:.4f} | {row['ece']:.4f} | "
            f"{row['brier']:.4f} | {_percent(row['accuracy'])} | "
            f"{_percent(row['mean_confidence'])} |"
        )
    stored = section["written_to"]
    lines += ["", f"calibration.json: written to `{stored}`." if stored else
              f"calibration.json: not written ({section['not_written']})."]  # fmt: skip
    return lines


def write_report(
    evaluation: Evaluation,
    out: Path,
    *,
    figures: bool = True,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out/report.json``, ``out/report.md`` and (with ``figures``) the PNGs;
    ``calibration``: a fitted temperature's section."""
    from service.evaluate.figures import figure_names

    out.mkdir(parents=True, exist_ok=True)
    data = report(evaluation, calibration)
    names = figure_names(len(evaluation.class_names), calibration is not None) if figures else []
    # The numbers first: a figure that fails must not lose them.
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(markdown(data, names))
    if figures:
        from service.evaluate.figures import write_figures

        write_figures(data, out)
    return data
