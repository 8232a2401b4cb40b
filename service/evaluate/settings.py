"""Settings of ``python -m service.evaluate``: flags, then ``EVALUATE_*`` variables, then
defaults. Read once in :func:`service.evaluate.cli.main` and passed on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.losses import REDUCTIONS

__all__ = ["EvaluateSettings"]


class EvaluateSettings(BaseSettings):
    """Every setting, also settable as ``--kebab-case`` flag or ``EVALUATE_UPPER_CASE``."""

    model_config = SettingsConfigDict(
        env_prefix="EVALUATE_",
        cli_prog_name="python -m service.evaluate",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        protected_namespaces=(),
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    dataset: str = Field(
        description="synthetic[:k=v,...], digits, cifar10, a CIFAR-10 archive or "
        "cifar-10-batches-py folder, an .npz (images, labels), or a folder of <class>/*.png."
    )
    split: Literal["test", "train"] = Field(
        "test", description="Split of a CIFAR-format dataset (the others have one)."
    )
    data_root: Path = Field(
        Path("data"), description="Where synthetic and digits are written on first use."
    )
    model_repository: Path = Field(
        Path("models"), description="Repository (<model>/<version>/model.onnx) of the model."
    )
    model: str | None = Field(
        None, description="Model name (default: the repository's only model; required with "
        "--server).",
    )  # fmt: skip
    version: int | None = Field(None, ge=1, description="Model version (default: the latest).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="onnxruntime device of a repository model."
    )
    server: str | None = Field(
        None, description="host:port of an Open Inference Protocol gRPC API to score with "
        "instead of the repository (this service's gRPC port, Triton, MLServer...).",
    )  # fmt: skip
    api_key: SecretStr | None = Field(None, description="API key sent to --server.")
    tls_ca_file: Path | None = Field(
        None, description="Speak TLS to --server, trusting this CA (PEM)."
    )
    request_rows: int = Field(
        256, ge=1, le=65536, description="Rows per inference request to --server."
    )
    loss: str = Field(
        "sparse_categorical_crossentropy", description="Loss of the registry (as /loss takes)."
    )
    reduction: str = Field(
        "sum_over_batch_size",
        description=f"One of {', '.join(r for r in REDUCTIONS if r != 'none')}.",
    )
    loss_options: dict[str, Any] = Field(
        default_factory=dict, description="The loss's options as JSON, e.g. '{\"gamma\": 2}'."
    )
    loss_input: Literal["logits", "softmax", "sigmoid"] = Field(
        "logits", description="Compute the loss from the logits, or from these probabilities."
    )
    engine: Literal["local", "ray"] = Field(
        "local", description="local: threads here; ray: Ray Data actors (pip install '.[ray]')."
    )
    workers: int | None = Field(
        None, ge=1, le=4096, description="Local threads or Ray actors (default: local 1, "
        "Ray one per CPU of the cluster).",
    )  # fmt: skip
    threads: int | None = Field(
        None, ge=1, le=1024, description="onnxruntime threads per worker (default: local the "
        "usable CPUs / workers, Ray 1).",
    )  # fmt: skip
    ray_address: str | None = Field(
        None, description="Ray cluster to join (ray://host:10001 or host:6379); default: "
        "start a local Ray.",
    )  # fmt: skip
    ray_ship_code: bool = Field(
        True, description="With --ray-address: upload the service and training packages to "
        "the workers (their dependencies must be installed there).",
    )  # fmt: skip
    chunk_size: int = Field(1024, ge=1, le=65536, description="Rows per chunk of work.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N images.")
    out: Path = Field(
        Path("runs/evaluation"), description="Folder of report.json, report.md and figures."
    )
    figures: bool = Field(True, description="Write the PNG figures (needs matplotlib).")
    progress: bool = Field(True, description="Show a progress bar with images/s on stderr.")
    calibrated: bool = Field(
        True, description="Score a repository version that has a calibration.json as the "
        "service serves it, softmax(logits / T); --no-calibrated: the raw logits.",
    )  # fmt: skip
    fit_temperature: bool = Field(
        False, description="Fit temperature scaling (softmax classifiers) on part of the rows, "
        "measure it on the others, report it, and write calibration.json (--write-calibration).",
    )  # fmt: skip
    calibration_split: float = Field(
        0.5, gt=0, le=1, allow_inf_nan=False, description="With --fit-temperature: the "
        "fraction of rows the temperature is fitted on; the others measure it (1: fitted and "
        "measured on the same rows, optimistic).",
    )  # fmt: skip
    split_seed: int = Field(
        0, ge=0, lt=2**63, description="Seed of the per-row hash that puts each row on the fit "
        "or the measure side (independent of chunks, engine and workers).",
    )  # fmt: skip
    write_calibration: bool = Field(
        True, description="With --fit-temperature and a repository model: write "
        "calibration.json into the version's folder (the service then serves it calibrated).",
    )  # fmt: skip
