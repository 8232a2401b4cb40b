"""The gRPC-front comparison's table: medians over rounds, by load then server kind."""

from __future__ import annotations

from bench.grpc_fronts import table


def test_medians_by_load_then_kind() -> None:
    samples = {
        ("sync-4", 32): [
            (2600.0, 12.0, 480.0, 58.0),
            (2800.0, 11.0, 450.0, 57.0),
            (2700.0, 11.5, 470.0, 60.0),
        ],
        ("aio", 32): [
            (4000.0, 7.4, 344.0, 58.0),
            (3600.0, 8.6, 374.0, 63.0),
            (3900.0, 7.0, 350.0, 61.0),
        ],
        ("aio", 1): [(1600.0, 0.6, 560.0, 80.0)],
    }
    lines = table(samples).splitlines()[2:]
    assert lines == [
        "| aio | 1 | 1600 | 0.60 | 560 | 80 |",
        "| aio | 32 | 3900 | 7.40 | 350 | 61 |",
        "| sync-4 | 32 | 2700 | 11.50 | 470 | 58 |",
    ]
