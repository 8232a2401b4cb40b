"""The fairness benchmark's summary: the transport beside each flood against the targets."""

from __future__ import annotations

from bench._calls import Outcomes
from bench.fairness import summary
from bench.overload import OverloadPlan, OverloadReport


def outcomes(admitted: int, p99: float, shed: int = 0) -> Outcomes:
    return Outcomes(admitted + shed, admitted, shed, {}, p99 / 2, p99, 1.0, 2.0)


def report(flood: str, beside_ok: int, beside_p99: float, recovery: float | None) -> OverloadReport:
    plan = OverloadPlan(
        seconds=10.0,
        rest_clients=64 if flood == "rest" else 16,
        grpc_clients=64 if flood == "grpc" else 16,
    )
    beside = "grpc" if flood == "rest" else "rest"
    by = {flood: outcomes(5000, 100.0, 200), beside: outcomes(beside_ok, beside_p99)}
    return OverloadReport(
        "m", plan, outcomes(0, 0.0), by, 3.0, 13.0, 0.01, recovery, outcomes(20, 2.0),
        100.0, 110.0, 105.0, 200,
    )  # fmt: skip


def test_each_direction_is_judged_on_the_transport_beside_the_flood() -> None:
    table = summary({
        "rest": report("rest", beside_ok=4000, beside_p99=70.0, recovery=0.1),
        "grpc": report("grpc", beside_ok=900, beside_p99=40.0, recovery=2.5),
    })  # fmt: skip
    rest_flood, grpc_flood = table.splitlines()[2:]
    assert rest_flood.startswith("| REST × 64 | gRPC × 16 | 400 | 35.0 / 70.0 |")
    assert rest_flood.endswith("| 500 | 0.10 | yes |")
    assert grpc_flood.startswith("| gRPC × 64 | REST × 16 | 90 |")  # under 100 answers/s
    assert grpc_flood.endswith("| 2.50 | no |")


def test_a_slow_or_unrecovered_direction_misses_its_targets() -> None:
    slow = summary({"rest": report("rest", beside_ok=4000, beside_p99=900.0, recovery=0.1)})
    assert slow.endswith("| no |")
    never = summary({"rest": report("rest", beside_ok=4000, beside_p99=90.0, recovery=None)})
    assert "| never | no |" in never
