"""A promotion's record: promotion.json (every figure), promotion.md, and promotion.png (the
reliability diagrams of both versions, raw and as served)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.promotion.decision import Verdict
from service.promotion.measure import Measured

__all__ = ["write_report"]

FIGURE = "promotion.png"


def _figure(versions: list[tuple[str, Measured]], path: Path) -> None:
    from service.evaluate.figures import Panel, reliability_grid

    def panel(role: str, measured: Measured, which: str) -> Panel:
        temperature = 1.0 if which == "raw" else measured.temperature
        title = (
            f"{role}: version {measured.version}, {which} (T = {temperature:.4g}), "
            f"ECE (15 bins) = {measured.figures(which)['ece']:.4f}"
        )
        return title, measured.reliability(which)

    rows = [(panel(r, m, "raw"), panel(r, m, "served")) for r, m in versions]
    reliability_grid(rows, path, dpi=100)


def _row(role: str, measured: Measured) -> str:
    served, raw = measured.figures("served"), measured.figures("raw")
    return (
        f"| {role} | {measured.version} | {measured.temperature:.4g} | {raw['nll']:.4f} → "
        f"**{served['nll']:.4f}** | {raw['ece']:.4f} → **{served['ece']:.4f}** | "
        f"{100 * served['accuracy']:.2f}% |"
    )


def write_report(
    out: Path,
    *,
    label: str,
    candidate: Measured,
    incumbent: Measured | None,
    verdict: Verdict,
    moved: bool,
    figures: bool,
) -> dict[str, Any]:
    """Write the record into ``out``; its data."""
    out.mkdir(parents=True, exist_ok=True)
    first = candidate.served
    data: dict[str, Any] = {
        "label": label,
        "model": first["model"]["name"],
        "dataset": first["dataset"],
        "candidate": _version(candidate),
        "incumbent": _version(incumbent) if incumbent is not None else None,
        "promote": verdict.promote,
        "findings": verdict.findings,
        "label_moved": moved,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "promotion.json").write_text(json.dumps(data, indent=2) + "\n")
    versions = [("incumbent", incumbent)] if incumbent is not None else []
    versions.append(("candidate", candidate))
    if figures:
        _figure(versions, out / FIGURE)
    decision = "PROMOTED" if verdict.promote else "REFUSED"
    if verdict.promote and not moved:
        decision += " (not moved: dry run)"
    dataset = first["dataset"]
    synthetic = ["**Synthetic stand-in data, not CIFAR-10.**", ""] if (
        dataset["name"] == "synthetic"
    ) else []  # fmt: skip
    lines = [
        f"# Promotion of {data['model']} version {candidate.version} to `{label}`: {decision}",
        "",
        *synthetic,
        f"Measured on `{dataset['source']}` ({dataset['images']:,} images), each version as "
        "the service serves it (its own calibration applied; bold) and raw.",
        "",
        "| role | version | T | NLL raw → served | ECE raw → served | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
        *[_row(role, measured) for role, measured in versions],
        "",
        *[f"- {finding}" for finding in verdict.findings],
    ]
    if figures:
        lines += ["", f"![reliability]({FIGURE})"]
    (out / "promotion.md").write_text("\n".join(lines) + "\n")
    return data


def _version(measured: Measured) -> dict[str, Any]:
    return {
        "version": measured.version,
        "temperature": measured.temperature,
        "served": measured.figures("served"),
        "raw": measured.figures("raw"),
        "reliability": {
            "served": measured.reliability("served"),
            "raw": measured.reliability("raw"),
        },
    }
