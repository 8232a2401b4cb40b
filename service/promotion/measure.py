"""Each version measured through the evaluation pipeline: as served (its own calibration
applied) and raw, on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.cpus import usable_cpus
from service.evaluate.configure import job_from_settings
from service.evaluate.report import report
from service.evaluate.runner import evaluate
from service.evaluate.settings import EvaluateSettings
from service.promotion.settings import PromoteSettings

__all__ = ["Measured", "measure"]


@dataclass(frozen=True)
class Measured:
    """One version's evaluation reports (``service.evaluate``'s report.json data)."""

    version: int
    served: dict[str, Any]
    """With the version's calibration applied, as the service serves it."""
    raw: dict[str, Any]
    """From the raw logits (temperature 1)."""

    @property
    def temperature(self) -> float:
        """The temperature the service applies to this version."""
        return float(self.served["model"].get("calibration_temperature", 1.0))

    def figures(self, which: str = "served") -> dict[str, float]:
        """NLL, accuracy, ECE and mean confidence of the served (or ``raw``) scores."""
        data = self.served if which == "served" else self.raw
        return {"nll": float(data["loss"]["value"])} | {
            k: float(data["metrics"][k]) for k in ("accuracy", "ece", "mean_confidence")
        }


def _evaluate(settings: PromoteSettings, version: int, *, calibrated: bool) -> dict[str, Any]:
    evaluation_settings = EvaluateSettings.model_validate(
        {
            "dataset": settings.dataset,
            "split": settings.split,
            "data_root": settings.data_root,
            "model_repository": settings.model_repository,
            "model": settings.model,
            "version": version,
            "calibrated": calibrated,
            "workers": settings.workers,
            "chunk_size": settings.chunk_size,
            "limit": settings.limit,
            "figures": False,
            "progress": settings.progress,
        }
    )
    job, engine = job_from_settings(evaluation_settings, usable_cpus())
    evaluation = evaluate(
        job, engine, chunk_size=settings.chunk_size, limit=settings.limit,
        progress=settings.progress,
    )  # fmt: skip
    return report(evaluation)


def measure(settings: PromoteSettings, version: int) -> Measured:
    """``version`` as served and raw, on the settings' dataset (sparse categorical
    cross-entropy from logits: the NLL)."""
    served = _evaluate(settings, version, calibrated=True)
    return Measured(version, served, _evaluate(settings, version, calibrated=False))
