"""The overload benchmark in a short mode against a real process: far more clients than the
queue holds get an answer each, admitted or refused at once, memory stays bounded, and the
service is normal again soon after the load stops. Properties only, no speed: the bounds are
hang detectors."""

from __future__ import annotations

from pathlib import Path

from bench._models import write_synthetic_model
from bench.overload import OverloadPlan, measure, service_flags
from service.launcher import running_service

SLOW_LAYERS = 40
"""≈30 ms per batch of 8 on the 2-core VM: the model, not the event loop, limits throughput,
so the queue fills and sheds on any machine this suite runs on."""


def test_overload_sheds_at_once_and_recovers(tmp_path: Path) -> None:
    write_synthetic_model(tmp_path / "slow" / "1" / "model.onnx", layers=SLOW_LAYERS)
    plan = OverloadPlan(
        seconds=3, rest_clients=16, grpc_clients=16, baseline_requests=20, streak=10,
        recovery_timeout=15, client_timeout=30,
    )  # fmt: skip
    with running_service(tmp_path, *service_flags(max_queue_size=8, max_batch_size=8)) as service:
        report = measure(service, "slow", plan)
        assert service.process.poll() is None

    total = report.total
    assert total.other == {}, total.other  # no 5xx but 503, no timeout, no connection error
    assert total.admitted > 0
    assert total.shed > 0
    for transport in ("rest", "grpc"):
        answered = report.by_transport[transport]
        assert answered.admitted + answered.shed > 0, transport
    assert report.server_rejected >= total.shed  # the server counted every refusal we saw
    assert total.shed_p99_ms is not None
    assert total.shed_p99_ms < 2000  # a refusal comes at once (a hang would be 30 s)
    assert report.rss_peak_mb - report.rss_before_mb < 200
    assert report.recovery.other == {}
    assert report.first_ok_s is not None
    assert report.first_ok_s < 5
    assert report.recovery_s is not None  # normal latency again, 10 in a row, within 15 s
