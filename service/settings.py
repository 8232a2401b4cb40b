"""Service settings: command-line flags, then ``SERVICE_*`` environment variables, then defaults.

Read once in :func:`service.cli.main` and passed into every constructor; nothing reads them at
import time. The batching fields are the server-wide defaults that a model's ``config.json`` may
override (:class:`~service.batching.BatchingOptions`, defined once for both).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.batching import BatchingOptions
from service.logs import LogFormat
from service.security.keys import check_key

__all__ = ["Settings"]

MiB = 1 << 20
ORIGIN = re.compile(r"https?://[^/\s?#]+")


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
        hide_input_in_errors=True,  # an error about a key must not print the key
    )

    model_repository: Path = Field(
        Path("models"), description="Folder laid out as <model>/<version>/model.onnx."
    )
    model_control_mode: Literal["none", "poll", "explicit"] = Field(
        "poll", description="poll: watch the repository and serve what appears, changes or "
        "goes (a label move or a new export needs no restart); explicit: only the repository "
        "API loads and unloads; none: serve what start-up found (docs/model-lifecycle.md).",
    )  # fmt: skip
    poll_interval_seconds: float = Field(
        1.0, ge=0.05, le=3600, description="How often poll mode looks at the repository; a "
        "version is loaded once its model.onnx is unchanged across two looks.",
    )  # fmt: skip
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
    grpc_listeners: int = Field(
        2, ge=1, le=16, description="gRPC servers per serving process, all on the gRPC port "
        "(SO_REUSEPORT): grpc.aio accepts one call at a time per server, so with many client "
        "connections a second one accepts while the first waits (see docs/service.md).",
    )  # fmt: skip
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
    lone_runs: bool = Field(
        True, description="Run a request for one image on the serving process's own copy of "
        "the model (CPU only) when nothing else is queued or running, skipping the hop to a "
        "model process; off: every run takes the hop (the copy is not loaded).",
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
    rest_in_flight: int | None = Field(
        None, ge=1, le=1_000_000, description="REST requests in progress at once (from a whole "
        "body to the answer); more wait their turn, so that a REST flood cannot starve gRPC. "
        "Default: half of --max-queue-size (a REST lane's fair share of the queue).",
    )  # fmt: skip
    rest_backlog: int = Field(
        1024, ge=0, le=1_000_000, description="REST requests waiting for their turn; more are "
        "refused at once (HTTP 503 + Retry-After).",
    )  # fmt: skip
    request_timeout_seconds: float = Field(
        60.0, ge=0, le=3600, description="Longest a REST request may take, queueing included: "
        "then it is answered 504 and its queued work dropped; 0 = no limit. gRPC calls carry "
        "their own deadlines.",
    )  # fmt: skip
    shutdown_grace_seconds: float = Field(
        20.0, ge=0, le=3600, description="On SIGTERM/SIGINT, how long in-flight requests may "
        "take to finish before the listeners close.",
    )  # fmt: skip

    # Access control, TLS and CORS (docs/security.md); all off unless set.
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="API keys, comma-separated (several at once, for rotation); any key, "
        "here or in api_keys_file, turns access control on: clients send 'Authorization: "
        "Bearer KEY' or 'X-API-Key: KEY'. At least 16 characters. Prefer the environment or "
        "the file: flags show in process lists.",
    )  # fmt: skip
    api_keys_file: Path | None = Field(
        None, description="File with one API key per line (blank lines and # comments "
        "ignored), read again when it changes (checked at most once a second): for mounted "
        "secrets.",
    )  # fmt: skip
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) both listeners serve TLS with; needs "
        "tls_key_file.",
    )  # fmt: skip
    tls_key_file: Path | None = Field(
        None, description="PEM private key (unencrypted) of tls_cert_file."
    )
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: clients must present a certificate one of these CAs "
        "signed (mutual TLS), on both listeners.",
    )  # fmt: skip
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Origins (scheme://host[:port], or *) whose browser pages may call the "
        "REST API, comma-separated; none: CORS off.",
    )  # fmt: skip

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """A comma-separated string (from a flag or variable) as a list; JSON lists too."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                pass
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("api_keys")
    @classmethod
    def _usable_keys(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for number, key in enumerate(keys, start=1):
            check_key(key.get_secret_value(), f"key {number} of {len(keys)}")
        return keys

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path or trailing "
                    "slash (or * for any)"
                )
        return origins

    def rest_turns(self) -> tuple[int, int]:
        """REST requests in progress at once, and how many may wait (``RestTurns``)."""
        slots = self.rest_in_flight or max(1, self.batching_defaults().max_queue_size // 2)
        return slots, self.rest_backlog

    def batching_defaults(self) -> BatchingOptions:
        """The server-wide batching options, before any model's overrides."""
        return BatchingOptions.model_validate(
            {name: getattr(self, name) for name in BatchingOptions.model_fields}
        )
