"""The job and engine that :class:`EvaluateSettings` describe, with the version's served
calibration (``--calibrated``) and the calibration split (``--fit-temperature``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from service.evaluate.errors import EvaluationError
from service.evaluate.job import EvaluationJob, LossSpec
from service.evaluate.local_engine import LocalEngine
from service.evaluate.models import LocalModel, ServedModel, local_model
from service.evaluate.outputs import RowSplit
from service.evaluate.runner import Engine
from service.evaluate.settings import EvaluateSettings

__all__ = ["job_from_settings", "served_temperature"]

SERVED_NOTE = (
    "--server: scored from the server's logits; a calibration of the served version is not "
    "read (its repository is not here)"
)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror})") from None


def _where(settings: EvaluateSettings) -> str:
    """The dataset as workers elsewhere find it: an absolute path, CIFAR-10 found here, or the
    name of a generated dataset (written on each node)."""
    from training.data import DatasetError
    from training.datasets import CIFAR10, dataset_folder

    if settings.dataset == CIFAR10:
        try:
            return str(dataset_folder(CIFAR10).resolve())
        except DatasetError as exc:
            raise EvaluationError(str(exc)) from None
    path = Path(settings.dataset)
    return str(path.resolve()) if path.exists() else settings.dataset


def job_from_settings(settings: EvaluateSettings, cpus: int) -> tuple[EvaluationJob, Engine]:
    """The job and engine the settings describe (paths made absolute for remote workers)."""
    from service.evaluate.datasets import DatasetSpec

    if settings.server is not None:
        if settings.model is None:
            raise EvaluationError("--model is required with --server")
        model: Any = ServedModel(
            settings.server,
            settings.model,
            settings.version,
            settings.api_key.get_secret_value() if settings.api_key else None,
            _read(settings.tls_ca_file) if settings.tls_ca_file else None,
            settings.request_rows,
        )
    else:
        # Ray hides GPUs from actors that do not ask for one: there, cuda must be asked for.
        device = "cpu" if settings.engine == "ray" and settings.device == "auto" else None
        model = local_model(
            settings.model_repository, settings.model, settings.version,
            device or settings.device,
        )  # fmt: skip
    dataset = DatasetSpec(_where(settings), settings.split, str(settings.data_root.resolve()))
    loss = LossSpec(settings.loss, settings.reduction, settings.loss_options, settings.loss_input)
    if settings.fit_temperature and settings.loss_input == "sigmoid":
        raise EvaluationError(
            "--fit-temperature fits the temperature of a softmax classifier; sigmoid "
            "(multi-label) scores get no fit (use --loss-input logits or softmax)"
        )
    engine: Engine
    if settings.engine == "ray":
        from service.evaluate.ray_engine import RayEngine

        engine = RayEngine(settings.ray_address, settings.workers, settings.ray_ship_code)
        threads = settings.threads or 1
    else:
        workers = settings.workers or 1
        engine = LocalEngine(workers)
        threads = settings.threads or max(1, cpus // workers)
    if isinstance(model, LocalModel):
        why_not = "" if settings.calibrated else "--no-calibrated"
        if settings.loss_input == "sigmoid":  # as the service: softmax scores only
            why_not = "the service calibrates softmax scores, not sigmoid ones"
        temperature, note = served_temperature(model, why_not)
    else:
        temperature, note = 1.0, SERVED_NOTE
    job = EvaluationJob(
        dataset, model, loss, threads, temperature=temperature, temperature_note=note,
        keep_outputs=settings.fit_temperature,
        calibration_split=RowSplit(settings.calibration_split, settings.split_seed),
    )  # fmt: skip
    return job, engine


def served_temperature(model: LocalModel, why_not: str = "") -> tuple[float, str]:
    """The temperature the service applies to this version (its ``calibration.json``; 1 with
    none, or one fitted for another ``model.onnx``), and what the report says about it. With
    ``why_not`` (e.g. ``--no-calibrated``): 1, that reason, and the file is not read."""
    from service.calibration import CALIBRATION_FILE, CalibrationFileError, read_calibration

    folder = Path(model.path).parent
    path = folder / CALIBRATION_FILE
    if why_not:
        return 1.0, f"{path} not applied ({why_not})" if path.exists() else ""
    try:
        calibration = read_calibration(folder)
    except CalibrationFileError as exc:
        raise EvaluationError(
            f"{exc} (--no-calibrated scores the raw logits without reading it)"
        ) from None
    if calibration is None:
        return 1.0, ""
    if not calibration.applies_to(hashlib.sha256(model.onnx).hexdigest()):
        return 1.0, f"{path} was fitted for another model.onnx: not applied, nor served"
    return calibration.temperature, f"softmax(logits / T), T from {path}"
