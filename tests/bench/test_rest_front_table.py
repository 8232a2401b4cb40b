"""The REST-front comparison's table: medians over rounds, compared with uvicorn at the same
path and load."""

from __future__ import annotations

from bench.loadgen import LoadResult
from bench.rest_front import table


def result(rps: float, p50: float, failed: int = 0) -> LoadResult:
    return LoadResult(
        requests=round(rps * 4), seconds=4.0, failed=failed, p50_ms=p50, p99_ms=p50 * 2
    )


def test_medians_and_ratio_to_uvicorn() -> None:
    results = {
        ("uvicorn", "V2 REST JSON", 16): [result(2000, 8.0), result(1000, 9.0), result(1800, 7.0)],
        ("granian, 1 runtime thread", "V2 REST JSON", 16): [
            result(900, 12.0, failed=1),
            result(1500, 10.0),
            result(1350, 11.0),
        ],
    }
    lines = table(results, ["uvicorn", "granian, 1 runtime thread"]).splitlines()
    assert lines[2] == "| uvicorn | V2 REST JSON | 16 | 1800 | 8.00 | 16.00 | 1.00 | 0 |"
    assert (
        lines[3]
        == "| granian, 1 runtime thread | V2 REST JSON | 16 | 1350 | 11.00 | 22.00 | 0.75 | 1 |"
    )
