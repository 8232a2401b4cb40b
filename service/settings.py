"""Service settings: command-line flags, then ``SERVICE_*`` environment variables, then defaults.

Read once in :func:`service.cli.main` and passed into every constructor; nothing reads them at
import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

MiB = 1 << 20


class Settings(BaseSettings):
    """Every setting, also settable as ``--kebab-case`` flag or ``SERVICE_UPPER_CASE`` variable."""

    model_config = SettingsConfigDict(
        env_prefix="SERVICE_",
        cli_prog_name="python -m service",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        protected_namespaces=(),
        frozen=True,
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
    intra_op_threads: int = Field(
        0, ge=0, description="onnxruntime and loss threads per request; 0 = one per CPU core."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Logging level of the service and of uvicorn."
    )
    max_request_bytes: int = Field(
        16 * MiB, gt=0, description="Largest accepted request body (larger: 413)."
    )
    max_batch_size: int = Field(
        1024, gt=0, description="Most images or rows in one request (more: 413)."
    )
    grpc_max_message_bytes: int = Field(
        64 * MiB, gt=0, description="Largest gRPC message received or sent."
    )
