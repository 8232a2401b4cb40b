"""A short soak against a real process: every kind of request succeeds, and the memory of the
serving process and its model process does not grow after the warm-up."""

from __future__ import annotations

from pathlib import Path

from bench._soak_requests import KINDS
from bench.soak import SoakPlan, measure
from service.launcher import running_service
from tests.service.onnx_models import write_linear_model

REQUESTS = 1500
GROWTH_MB = 10
"""Measured on the 2-core VM: 0.4 MB of growth without a leak; 12.8 MB when the data plane
keeps every request's pixel array (≈10 KB a request), a leak this bound catches."""


def test_a_soak_of_mixed_requests_has_no_errors_and_no_growth(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx", metadata={"dataset": "synthetic"})
    plan = SoakPlan(requests=REQUESTS, concurrency=4, sample_every=50, warm_up=0.2)
    with running_service(tmp_path) as service:
        report = measure(service, "m", plan)

    assert report.errors == {}
    assert report.requests == REQUESTS
    assert set(report.by_kind) == set(KINDS)
    assert len(report.samples) >= REQUESTS // plan.sample_every
    assert report.growth_mb < GROWTH_MB, report.samples
