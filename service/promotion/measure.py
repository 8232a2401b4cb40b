"""Each version measured through the evaluation pipeline, in one pass over the rows: as
served (its own calibration applied), and raw (temperature 1) from the same pass's logits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from service.calibration import QualitySums
from service.cpus import usable_cpus
from service.evaluate.configure import job_from_settings
from service.evaluate.errors import EvaluationError
from service.evaluate.outputs import RowSplit
from service.evaluate.report import reliability_table, report
from service.evaluate.runner import evaluate
from service.evaluate.settings import EvaluateSettings
from service.promotion.settings import PromoteSettings

__all__ = ["Measured", "measure"]

FIGURES = ("accuracy", "ece", "mean_confidence")


@dataclass(frozen=True)
class Measured:
    """One version's evaluation: the served report (``service.evaluate``'s report.json data)
    and the raw logits' sums, from the same rows."""

    version: int
    served: dict[str, Any]
    """With the version's calibration applied, as the service serves it."""
    raw: QualitySums
    """From the raw logits (temperature 1)."""

    @property
    def temperature(self) -> float:
        """The temperature the service applies to this version."""
        return float(self.served["model"].get("calibration_temperature", 1.0))

    def figures(self, which: str = "served") -> dict[str, float]:
        """NLL, accuracy, ECE and mean confidence of the served (or ``raw``) scores."""
        if which != "served":
            quality = self.raw.quality()
            return {"nll": quality.nll} | {k: float(getattr(quality, k)) for k in FIGURES}
        data = self.served
        return {"nll": float(data["loss"]["value"])} | {
            k: float(data["metrics"][k]) for k in FIGURES
        }

    def reliability(self, which: str = "served") -> list[dict[str, Any]]:
        """The reliability bins of the served (or ``raw``) scores."""
        if which != "served":
            return reliability_table(self.raw)
        bins: list[dict[str, Any]] = self.served["reliability"]
        return bins


def measure(settings: PromoteSettings, version: int) -> Measured:
    """``version`` as served and raw, on the settings' dataset, in one model pass (sparse
    categorical cross-entropy from logits: the NLL; raw, in float64 from the kept logits)."""
    evaluation_settings = EvaluateSettings.model_validate(
        {
            "dataset": settings.dataset,
            "split": settings.split,
            "data_root": settings.data_root,
            "model_repository": settings.model_repository,
            "model": settings.model,
            "version": version,
            "calibrated": True,
            "workers": settings.workers,
            "chunk_size": settings.chunk_size,
            "limit": settings.limit,
            "figures": False,
            "progress": settings.progress,
        }
    )
    job, engine = job_from_settings(evaluation_settings, usable_cpus())
    # Every row on both sides of the split: the outputs are kept only for the raw figures.
    job = replace(job, keep_outputs=True, calibration_split=RowSplit(1.0))
    evaluation = evaluate(
        job, engine, chunk_size=settings.chunk_size, limit=settings.limit,
        progress=settings.progress,
    )  # fmt: skip
    raw = QualitySums.zeros()
    try:
        for chunk in evaluation.outputs:
            raw = raw + QualitySums.of(chunk.logits, chunk.labels, 1.0)
    except ValueError as exc:  # e.g. logits that are not finite
        raise EvaluationError(f"version {version}: {exc}") from None
    return Measured(version, report(evaluation), raw)
