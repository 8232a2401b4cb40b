"""Prometheus metrics, one registry per service instance (so several can live in one process).

With several worker processes (``--workers``), every worker records into the directory named by
``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor before the workers start) and ``/metrics``
on any worker reports the sum over all of them — prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from service.batching import RunTimes

__all__ = ["MULTIPROCESS_DIR", "ModelMetrics", "Telemetry"]

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ModelMetrics:
    """The batching metrics of one model version (children bound once, not per request)."""

    def __init__(self, telemetry: Telemetry, model: str, version: str) -> None:
        self._depth = telemetry.queue_depth.labels(model, version)
        self._rejected = telemetry.queue_rejected.labels(model, version)
        self._wait = telemetry.queue_wait.labels(model, version)
        self._rows = telemetry.batch_size.labels(model, version)
        self._run = telemetry.run_time.labels(model, version)
        self._lone = telemetry.lone_runs.labels(model, version)

    def queue_depth(self, waiting: int) -> None:
        self._depth.set(waiting)

    def rejected(self) -> None:
        self._rejected.inc()

    def dispatched(self, waits: Sequence[float], rows: int, lone: bool) -> None:
        for wait in waits:
            self._wait.observe(wait)
        self._rows.observe(rows)
        if lone:
            self._lone.inc()

    def finished(self, waits: Sequence[float], rows: int, times: RunTimes | None) -> None:
        if times is not None:
            self._run.observe(times.total)


class Telemetry:
    """The service's metrics: requests and latency per endpoint and status, the batchers' queues
    and model runs, and which model versions are loaded where."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        """Each (transport, endpoint, status)'s request counter and latency histogram."""
        model = ["model", "version"]
        self.requests = Counter(
            "service_requests",
            "Requests handled, by transport, endpoint and status.",
            ["transport", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "service_request_duration_seconds",
            "Request handling time, by transport and endpoint.",
            ["transport", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "service_inference_batch_size",
            "Rows (images) per model run, after dynamic batching.",
            model,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.lone_runs = Counter(
            "service_inference_lone_runs",
            "Model runs of a lone request that the serving process did itself, without the hop "
            "to a model process (--lone-runs).",
            model,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "service_inference_duration_seconds",
            "Time of one model run (a whole batch), including the input conversion.",
            model,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "service_queue_wait_seconds",
            "Time a request waited in its model's queue before its batch started.",
            model,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "service_queue_depth",
            "Requests waiting in a model's queue (summed over worker processes).",
            model,
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.queue_rejected = Counter(
            "service_queue_rejected",
            "Requests refused because their model's queue was full (503 / RESOURCE_EXHAUSTED).",
            model,
            registry=self.registry,
        )
        self.rest_waiting = Gauge(
            "service_rest_waiting",
            "REST requests waiting for their turn (--rest-in-flight are in progress at once; "
            "summed over worker processes).",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "service_model_info",
            "Loaded model versions (value 1) with their execution provider and dataset.",
            ["model", "version", "provider", "dataset"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.version_state = Gauge(
            "service_model_version_state",
            "1 for each model version's current state (LOADING, READY, UNLOADING, FAILED), "
            "0 for the others.",
            ["model", "version", "state"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.load_duration = Histogram(
            "service_model_load_duration_seconds",
            "Time to load and warm up a model version in every model process.",
            ["model"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.load_failures = Counter(
            "service_model_load_failures",
            "Model versions that could not be loaded (the old version, if any, kept serving).",
            ["model", "version"],
            registry=self.registry,
        )

    def model_loaded(
        self, model: str, version: int, provider: str, metadata: Mapping[str, str]
    ) -> None:
        """Record a loaded model version."""
        self.model_info.labels(model, str(version), provider, metadata.get("dataset", "")).set(1)

    def model_unloaded(
        self, model: str, version: int, provider: str, metadata: Mapping[str, str]
    ) -> None:
        """Record that a model version is no longer loaded."""
        self.model_info.labels(model, str(version), provider, metadata.get("dataset", "")).set(0)

    def version_state_changed(self, model: str, version: int, state: str | None) -> None:
        """Record a version's new state (``None``: gone)."""
        for known in ("LOADING", "READY", "UNLOADING", "FAILED"):
            self.version_state.labels(model, str(version), known).set(int(known == state))

    def load_finished(self, model: str, version: int, seconds: float, ok: bool) -> None:
        """Record one load of a model version (every model process), ``ok`` or failed."""
        self.load_duration.labels(model).observe(seconds)
        if not ok:
            self.load_failures.labels(model, str(version)).inc()

    def batching(self, model: str, version: int) -> ModelMetrics:
        """The metrics one model version's batcher reports to."""
        return ModelMetrics(self, model, str(version))

    def observe_request(self, transport: str, endpoint: str, status: str, seconds: float) -> None:
        """Count one finished request and record its duration."""
        key = (transport, endpoint, status)
        children = self._request_children.get(key)
        if children is None:  # looking a child up by its labels costs more than the update
            children = self._request_children[key] = (
                self.requests.labels(transport, endpoint, status),
                self.latency.labels(transport, endpoint),
            )
        counter, latency = children
        counter.inc()
        latency.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format, summed over worker processes if several."""
        directory = os.environ.get(MULTIPROCESS_DIR)
        if not directory:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
