"""``python -m service.evaluate``: a model on a labelled dataset → report.json, report.md, PNGs."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import CliApp, SettingsError

from service.cpus import usable_cpus
from service.evaluate.errors import EvaluationError
from service.evaluate.settings import EvaluateSettings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status (2: bad settings, dataset, model or loss)."""
    try:
        settings = CliApp.run(
            EvaluateSettings, cli_args=list(sys.argv[1:] if argv is None else argv)
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # e.g. --loss-options that is not JSON
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    from service.evaluate.report import write_report
    from service.evaluate.runner import evaluate, job_from_settings

    try:
        if settings.figures:
            from service.evaluate.figures import require_matplotlib

            require_matplotlib()  # before the run, not after it
        job, engine = job_from_settings(settings, usable_cpus())
        evaluation = evaluate(
            job, engine, chunk_size=settings.chunk_size, limit=settings.limit,
            progress=settings.progress,
        )  # fmt: skip
        data = write_report(evaluation, settings.out, figures=settings.figures)
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
    print(f"report: {settings.out / 'report.md'} (and report.json, figures)")
    return 0
