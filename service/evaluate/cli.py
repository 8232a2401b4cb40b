"""``python -m service.evaluate``: a model on a labelled dataset → report.json, report.md, PNGs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from service.command_line import settings_from_args
from service.cpus import usable_cpus
from service.evaluate.errors import EvaluationError
from service.evaluate.settings import EvaluateSettings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status (2: bad settings, dataset, model or loss)."""
    settings = settings_from_args(EvaluateSettings, argv)
    if settings is None:
        return 2
    from service.evaluate.configure import job_from_settings
    from service.evaluate.extras import require
    from service.evaluate.report import write_report
    from service.evaluate.runner import evaluate

    try:
        if settings.figures:
            require("matplotlib", "the figures", instead="--no-figures")  # before the run
        if settings.progress:
            require("tqdm", "the progress bar", instead="--no-progress")
        job, engine = job_from_settings(settings, usable_cpus())
        evaluation = evaluate(
            job, engine, chunk_size=settings.chunk_size, limit=settings.limit,
            progress=settings.progress,
        )  # fmt: skip
        section = _calibration(settings, job, evaluation) if settings.fit_temperature else None
        data = write_report(evaluation, settings.out, figures=settings.figures, calibration=section)
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics, run = data["metrics"], data["run"]
    if data["dataset"]["name"] == "synthetic":
        print("DATASET: SYNTHETIC stand-in (generated shapes), not CIFAR-10.")
    print(
        f"{data['dataset']['images']:,} images: {settings.loss} = {data['loss']['value']:.6g}, "
        f"accuracy {metrics['accuracy']:.4f}, top-5 {metrics['top_5_accuracy']:.4f}, "
        f"ECE {metrics['ece']:.4f} ({run['images_per_second']:,} images/s, {run['engine']})"
    )
    if section is not None:
        print(_calibration_line(section))
    print(f"report: {settings.out / 'report.md'} (and report.json, figures)")
    return 0


def _calibration(settings: EvaluateSettings, job: Any, evaluation: Any) -> dict[str, Any]:
    """Fit the temperature on the kept outputs; write calibration.json where asked and
    possible; the report's section."""
    from service.evaluate.calibrate import fit_calibration, store_calibration
    from service.evaluate.models import LocalModel

    fitted = fit_calibration(evaluation, job.calibration_split)
    written, reason = None, None
    if not isinstance(job.model, LocalModel):
        reason = "--server: the server's repository is not here"
    elif not settings.write_calibration:
        reason = "--no-write-calibration"
    else:
        written = store_calibration(fitted, job.model)
    return fitted.section(written, reason)


def _calibration_line(section: dict[str, Any]) -> str:
    before, after = section["before"], section["after"]
    stored = section["written_to"]
    where = f"written to {stored}" if stored else f"not written ({section['not_written']})"
    same = ", the fitted rows: optimistic" if section["same_rows"] else ""
    return (
        f"calibration: T = {section['temperature']:.4f} (NLL {before['nll']:.3f} → "
        f"{after['nll']:.3f}, ECE {before['ece']:.3f} → {after['ece']:.3f}, measured on "
        f"{section['measured_on']['rows']:,} rows{same}); {where}"
    )
