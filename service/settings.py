"""Service settings: command-line flags, then ``SERVICE_*`` environment variables, then defaults.

Read once in :func:`service.cli.main` and passed into every constructor; nothing reads them at
import time. The batching fields are the server-wide defaults that a model's ``config.json`` may
override (:class:`~service.batching.BatchingOptions`, defined once for both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.batching import BatchingOptions
from service.logs import LogFormat

__all__ = ["Settings"]

MiB = 1 << 20


class Settings(BaseSettings, BatchingOptions):
    """Every setting, also settable as ``--kebab-case`` flag or ``SERVICE_UPPER_CASE`` variable."""

    model_config = SettingsConfigDict(
        env_prefix="SERVICE_",
        cli_prog_name="python -m service",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        protected_namespaces=(),
        frozen=True,
        extra="forbid",
    )

    model_repository: Path = Field(
        Path("models"), description="Folder laid out as <model>/<version>/model.onnx."
    )
    host: str = Field("127.0.0.1", description="Interface to bind (0.0.0.0 in the container).")
    http_port: int = Field(8000, ge=0, le=65535, description="REST port.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when onnxruntime offers it, else CPU."
    )
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="Serving processes sharing both ports, each with every model loaded; more "
        "than one lifts the single event loop's limit (see docs/service.md).",
    )
    model_processes: int = Field(
        1, ge=1, le=256, description="Processes per serving process that run the models, one "
        "batch each at a time (each loads every model).",
    )  # fmt: skip
    intra_op_threads: int = Field(
        0, ge=0, le=1024, description="onnxruntime threads per model run; 0 = the cores left "
        "after one per serving process, shared by its model processes (at least 1).",
    )  # fmt: skip
    executor_threads: int = Field(
        0, ge=0, le=1024, description="Threads per serving process for decoding large requests "
        "and loss math; 0 = 1.",
    )  # fmt: skip
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Logging level of the service and of uvicorn."
    )
    log_format: LogFormat = Field(
        "text", description="text, or json: one JSON object per line, for log collectors."
    )
    max_request_bytes: int = Field(
        16 * MiB, gt=0, description="Largest accepted request body (larger: 413)."
    )
    max_request_rows: int = Field(
        1024, gt=0, description="Most images or rows in one request (more: 413)."
    )
    grpc_max_message_bytes: int = Field(
        64 * MiB, gt=0, description="Largest gRPC message received or sent."
    )
    die_with_parent: bool = Field(
        False, description="Stop (as on SIGTERM) when the process that started this one exits: "
        "for supervisors, test runners and notebooks that must not leave a server behind.",
    )  # fmt: skip
    shutdown_grace_seconds: float = Field(
        20.0, ge=0, le=3600, description="On SIGTERM/SIGINT, how long in-flight requests may "
        "take to finish before the listeners close.",
    )  # fmt: skip

    def batching_defaults(self) -> BatchingOptions:
        """The server-wide batching options, before any model's overrides."""
        return BatchingOptions.model_validate(
            {name: getattr(self, name) for name in BatchingOptions.model_fields}
        )
