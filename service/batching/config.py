"""Dynamic batching options: server-wide defaults (settings) that a model may override in a
``config.json`` beside its versions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BatchingOptions"]


class BatchingOptions(BaseModel):
    """How requests for one model version are queued and coalesced into model runs.

    Triton's vocabulary: ``max_batch_size``, ``max_queue_delay``, ``max_queue_size``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batching: bool = Field(
        True,
        description="Coalesce concurrent requests into one model run. Off: each request runs "
        "alone, still through the bounded queue.",
    )
    max_batch_size: int = Field(
        32, ge=1, le=65536, description="Most rows (images) in one model run; a larger request "
        "runs alone.",
    )  # fmt: skip
    max_queue_delay_ms: float = Field(
        0.0,
        ge=0,
        le=60_000,
        description="How long the oldest queued request may wait for companions once the model "
        "could run it. 0: run at once; batches still form while the model is busy.",
    )
    max_queue_size: int = Field(
        256, ge=1, le=1_000_000, description="Most requests waiting per model version; more are "
        "refused at once (HTTP 503 + Retry-After, gRPC RESOURCE_EXHAUSTED).",
    )  # fmt: skip
