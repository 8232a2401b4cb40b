"""The serving benchmark's pure parts: the Python-front bound, the best peer a row is compared
with, the rounds of a head-to-head point, the best MLServer settings of a sweep, and the null
ASGI app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench._points import Row
from bench.bound import Bound, bound_rps
from bench.ceiling import Ceiling
from bench.head_to_head import median_row, rotated
from bench.loadgen import LoadResult
from bench.null_asgi import BODY, app
from bench.peer import SWEEP, MLServerSettings
from bench.peer_sweep import best_settings, sweep_table
from bench.plot import plot
from bench.serving import IMAGE, best_peers, routes, table, transport


def _row(
    server: str, route: str, concurrency: int, rps: float, batching: str = "-", failed: int = 0
) -> Row:
    result = LoadResult(
        requests=round(rps * 2), seconds=2.0, failed=failed, p50_ms=rps / 1000, p99_ms=2.0
    )
    return Row(server, route, batching, concurrency, result)


def test_the_bound_is_the_cores_over_the_servers_and_the_models_microseconds() -> None:
    assert bound_rps(2, 400.0, 400.0) == pytest.approx(2500.0)
    assert bound_rps(1, 0.0, 500.0) == pytest.approx(2000.0)
    assert bound_rps(2, 300.0, 400.0, load_us=100.0) == pytest.approx(2500.0)
    bound = Bound("gRPC", "null", 32, 3000.0, 300.0, 50.0, 450.0, 2)
    assert bound.rps == pytest.approx(2e6 / 800.0)  # h2load shares the cores


def test_the_transport_of_a_path() -> None:
    assert transport("V2 gRPC raw") == "gRPC"
    assert transport("null gRPC") == "gRPC"
    assert transport("V2 REST JSON") == "REST"
    assert transport("/predict base64 PNG") == "REST"


def test_the_best_peer_is_the_fastest_at_the_same_path_and_concurrency() -> None:
    rows = [
        _row("ours", "V2 gRPC raw", 32, 1500.0, "on"),
        _row("MLServer", "V2 gRPC raw", 32, 700.0),
        _row("KServe", "V2 gRPC raw", 32, 800.0),
        _row("MLServer", "V2 gRPC raw", 16, 650.0),
        _row("KServe", "V2 gRPC raw", 16, 600.0),
        _row("MLServer", "V2 REST JSON", 16, 400.0),
        _row("nginx null", "V2 REST JSON", 16, 60000.0),
    ]
    best = best_peers(rows)
    assert best[("V2 gRPC raw", 32)].server == "KServe"
    assert best[("V2 gRPC raw", 16)].server == "MLServer"
    assert best[("V2 REST JSON", 16)].server == "MLServer"  # nginx null is no peer
    assert ("V2 gRPC raw", 1) not in best


def test_the_table_compares_ours_with_the_best_peer_and_the_bound() -> None:
    ceiling = Ceiling({1: 2000.0, 32: 10000.0}, 0.25)
    bounds = [
        Bound("gRPC", "null grpc.aio server", 32, 3000.0, 250.0, 50.0, 500.0, 2),  # 2,500 req/s
        Bound("REST", "null ASGI app on uvicorn", 16, 5000.0, 110.0, 40.0, 350.0, 2),  # 4,000
    ]
    rows = [
        _row("ours", "V2 gRPC raw", 32, 1500.0, "on"),
        _row("ours", "/predict JSON", 32, 1000.0, "on"),
        _row("MLServer", "V2 gRPC raw", 32, 500.0),
        _row("KServe", "V2 gRPC raw", 32, 750.0),
        _row("KServe", "V2 REST JSON", 32, 400.0),
    ]
    lines = table(ceiling, bounds, rows, routes("cifar10", IMAGE)).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    # server, path, batching, in flight, req/s, p50, p99, % ceiling, % bound, × peer, peer
    assert cells[0][7:11] == ["15%", "60%", "2.00", "KServe"]
    assert cells[1][7:11] == ["10%", "25%", "2.50", "KServe"]  # REST paths: V2 REST JSON
    assert cells[2][8:11] == ["20%", "", ""]  # a peer's row: no ratio of its own


def test_each_round_starts_with_the_next_server_so_none_is_always_first() -> None:
    jobs = ["ours", "MLServer", "KServe"]
    orders = [rotated(jobs, turn) for turn in range(4)]
    assert orders == [
        ["ours", "MLServer", "KServe"],
        ["MLServer", "KServe", "ours"],
        ["KServe", "ours", "MLServer"],
        ["ours", "MLServer", "KServe"],
    ]
    assert rotated([], 2) == []


def test_a_point_measured_in_rounds_is_its_median_round_with_every_rounds_errors() -> None:
    runs = [_row("ours", "V2 gRPC raw", 32, rps, "on", failed)
            for rps, failed in ((2100.0, 0), (1500.0, 2), (1900.0, 1))]  # fmt: skip
    row = median_row(runs)
    assert row.result.rps == pytest.approx(1900.0)
    assert row.result.p50_ms == pytest.approx(1.9)  # the median round's latencies, not a mix
    assert row.result.failed == 3
    assert row.rounds == (2100.0, 1500.0, 1900.0)
    even = median_row(runs[:2])
    assert even.result.rps == pytest.approx(1500.0)  # the lower middle: never flattering
    lines = table(Ceiling({1: 1000.0}, 0.25), [], [row], routes("cifar10", IMAGE)).splitlines()
    assert lines[2].rstrip(" |").endswith("2100, 1500, 1900")


def test_the_best_mlserver_settings_are_chosen_per_path() -> None:
    none, batched, one_worker = (MLServerSettings(0), MLServerSettings(0, 32, 0.002),
                                 MLServerSettings(1, 32, 0.01))  # fmt: skip
    results = {
        none: {"V2 gRPC raw": 900.0, "V2 REST JSON": 700.0},
        batched: {"V2 gRPC raw": 950.0, "V2 REST JSON": 650.0},
        one_worker: {"V2 gRPC raw": 800.0, "V2 REST JSON": 700.0},
    }
    assert best_settings(results) == {"V2 gRPC raw": batched, "V2 REST JSON": none}
    assert "**950**" in sweep_table(results)


def test_mlserver_settings_say_what_they_are() -> None:
    assert len(SWEEP) == 8
    assert MLServerSettings(0).model_settings() == {}
    assert MLServerSettings(1, 32, 0.01).model_settings() == {
        "max_batch_size": 32, "max_batch_time": 0.01
    }  # fmt: skip
    assert MLServerSettings(1, 32, 0.01).label == "1 workers, batching 32 / 10 ms"
    assert MLServerSettings(0).server_settings() == {"parallel_workers": 0, "debug": False}
    directories = {settings.directory for settings in SWEEP}
    assert len(directories) == len(SWEEP)  # servers with different settings may run together


def test_the_null_asgi_app_reads_the_body_and_answers_200() -> None:
    chunks = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "POST"}, receive, send))
    assert chunks == []
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == BODY


def test_the_plot_draws_every_peer_and_the_bounds(tmp_path: Path) -> None:
    rows = [
        _row(server, route, c, rps, batching)
        for server, batching, rps in (("ours", "on", 1500.0), ("ours", "off", 1000.0),
                                      ("MLServer", "-", 600.0), ("KServe", "-", 500.0))
        for route in ("V2 gRPC raw", "V2 REST JSON")
        for c in (1, 32)
    ]  # fmt: skip
    out = tmp_path / "serving.png"
    plot(Ceiling({32: 9000.0}, 0.25), rows, out, "title", {"gRPC": 2500.0, "REST": 4000.0})
    assert out.stat().st_size > 10_000
