"""Prometheus metrics, one registry per service instance (so several can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Telemetry"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Telemetry:
    """The service's metrics: requests and latency per endpoint and status, inference batch
    sizes, and which model versions are loaded where."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "Images per model inference.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "service_model_info",
            "Loaded model versions (value 1) with their execution provider and dataset.",
            ["model", "version", "provider", "dataset"],
            registry=self.registry,
        )

    def observe_request(self, transport: str, endpoint: str, status: str, seconds: float) -> None:
        """Count one finished request and record its duration."""
        self.requests.labels(transport, endpoint, status).inc()
        self.latency.labels(transport, endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)
