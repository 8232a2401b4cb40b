"""Reading h2load's per-request log: what counts as a request, a failure and a latency."""

from __future__ import annotations

from bench.loadgen import read_log


def log(*rows: tuple[str, int]) -> str:
    return "".join(
        f"1765100000{i:06d}\t{status}\t{micros}\n" for i, (status, micros) in enumerate(rows)
    )


def test_successes_are_timed_and_other_statuses_are_failures() -> None:
    latencies, statuses = read_log(log(("200", 1500), ("503", 300), ("200", 900), ("422", 200)))
    assert latencies == [0.2, 0.3, 0.9, 1.5]
    assert statuses == {"503": 1, "422": 1}


def test_a_request_straddling_the_warm_up_is_left_out() -> None:
    # Status 0: headers came during the warm-up, the stream closed in the measured phase.
    latencies, statuses = read_log(log(("200", 1000), ("0", 7000), ("200", 2000)))
    assert latencies == [1.0, 2.0]
    assert not statuses


def test_stream_errors_are_not_timed_nor_counted_twice() -> None:
    # h2load counts a stream error (-1) in its own "errored" total, which the caller adds.
    latencies, statuses = read_log(log(("-1", 50), ("200", 1000)))
    assert latencies == [1.0]
    assert not statuses
