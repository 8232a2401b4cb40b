"""Settings of ``python -m service.promotion``: flags, then ``PROMOTE_*`` variables, then
defaults. Read once in :func:`service.promotion.cli.main` and passed on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.repository import LABEL

__all__ = ["PromoteSettings"]


class PromoteSettings(BaseSettings):
    """Every setting, also settable as ``--kebab-case`` flag or ``PROMOTE_UPPER_CASE``."""

    model_config = SettingsConfigDict(
        env_prefix="PROMOTE_",
        cli_prog_name="python -m service.promotion",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        protected_namespaces=(),
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    candidate: int = Field(ge=1, description="The version to promote.")
    label: str = Field("stable", description="The version label to move to the candidate.")
    dataset: str = Field(
        description="Labelled data both versions are measured on (as python -m "
        "service.evaluate takes it): use rows no calibration was fitted on."
    )
    split: Literal["test", "train"] = Field("test", description="Split of a CIFAR-format dataset.")
    data_root: Path = Field(Path("data"), description="Where generated datasets are written.")
    limit: int | None = Field(None, ge=1, description="Measure only the first N images.")
    model_repository: Path = Field(Path("models"), description="The served repository.")
    model: str | None = Field(None, description="Model name (default: the repository's only one).")
    nll_margin: float = Field(
        0.01, ge=0, le=1, description="Relative NLL increase allowed (0.01: 1 %)."
    )
    accuracy_margin: float = Field(
        0.005, ge=0, le=1, description="Accuracy drop allowed, absolute (0.005: half a point)."
    )
    ece_margin: float | None = Field(
        None, ge=0, le=1, description="ECE increase allowed, absolute (default: ECE is "
        "reported, not gated).",
    )  # fmt: skip
    workers: int | None = Field(None, ge=1, le=4096, description="Evaluation threads.")
    chunk_size: int = Field(1024, ge=1, le=65536, description="Rows per chunk of work.")
    dry_run: bool = Field(False, description="Decide and report; move no label.")
    server: str | None = Field(
        None, description="REST base URL of the running service (http://host:8000): after the "
        "move, ask it to look at the model now (else its next poll finds the change).",
    )  # fmt: skip
    api_key: SecretStr | None = Field(None, description="API key sent to --server.")
    out: Path = Field(
        Path("runs/promotion"), description="Folder of promotion.json, promotion.md, figure."
    )
    figures: bool = Field(True, description="Draw the reliability diagrams (needs matplotlib).")
    progress: bool = Field(False, description="Show the evaluations' progress bars.")

    @field_validator("label")
    @classmethod
    def check_label(cls, label: str) -> str:
        """A label the service accepts (checked before any evaluation)."""
        if not LABEL.fullmatch(label):
            raise ValueError(
                f"label {label!r} must start with a letter and hold only letters, digits, '_', "
                "'.' and '-' (at most 64)"
            )
        return label
