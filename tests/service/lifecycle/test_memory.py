"""Load/unload cycles hand memory back: the service's total resident memory (every process)
over the last cycles stays within 10% of the first cycles' (bench/lifecycle.py runs 50).

Medians of four cycles each, because the total moves ±25 MiB from one cycle to the next with
nothing leaking (allocator arenas, the model processes' peaks); a leaked copy of the cycled model
(12 MB) would add about 100 MB between the two windows."""

from __future__ import annotations

import statistics
from pathlib import Path

import httpx

from bench._proc import tree_rss_bytes
from service.launcher import running_service
from tests.service.lifecycle.helpers import publish
from tests.service.onnx_models import write_linear_model

CYCLES = 12
BODY = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [8, 32, 32, 3],
                    "data": [9] * (8 * 3072)}]}  # fmt: skip


def test_load_unload_cycles_leave_memory_where_it_was(tmp_path: Path) -> None:
    publish(tmp_path, "steady", 1, seed=1)
    write_linear_model(tmp_path / "cycled" / "1" / "model.onnx", seed=2, classes=1000)
    flags = ["--model-control-mode", "explicit", "--model-processes", "2"]
    with (
        running_service(tmp_path, *flags) as service,
        httpx.Client(base_url=service.url, timeout=60) as http,
    ):
        sizes = []
        for _ in range(CYCLES):
            assert http.post("/v2/models/cycled/infer", json=BODY).status_code == 200
            assert http.post("/v2/repository/models/cycled/unload").status_code == 200
            assert http.post("/v2/repository/models/cycled/load").status_code == 200
            sizes.append(tree_rss_bytes(service.process.pid))
        first, last = statistics.median(sizes[:4]), statistics.median(sizes[-4:])
        assert last <= first * 1.10, [f"{s / 2**20:.0f} MiB" for s in sizes]
