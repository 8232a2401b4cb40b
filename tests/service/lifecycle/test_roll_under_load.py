"""A version roll v1 → v2 → v1 under 32 requests in flight (16 REST, 16 gRPC) against the
service as its own process fails no request; an unload with a batch in flight answers it."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import httpx

from bench._traffic import Traffic
from service.launcher import running_service
from tests.service.lifecycle.helpers import publish, states, wait_for
from tests.service.onnx_models import write_slow_model


def test_a_roll_and_a_rollback_under_load_fail_no_request(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    with running_service(tmp_path, "--poll-interval-seconds", "0.1") as service:
        with Traffic(service.http_port, service.grpc_port, "m") as traffic:
            time.sleep(1.0)
            publish(tmp_path, "m", 2, seed=2)
            wait_for(lambda: states(service.url, "m") == {"2": "READY"}, what="rolled to 2")
            time.sleep(0.5)
            (tmp_path / "m" / "config.json").write_text(
                json.dumps({"version_policy": {"specific": [1]}})
            )
            wait_for(lambda: states(service.url, "m") == {"1": "READY"}, what="back to 1")
            time.sleep(0.5)
        tally = traffic.stop()
        assert tally.failures == []
        assert tally.versions["1"] > 50, tally.versions
        assert tally.versions["2"] > 50, tally.versions
        assert "FAILED" not in service.log()


def test_an_unload_with_a_batch_in_flight_answers_it(tmp_path: Path) -> None:
    write_slow_model(tmp_path / "slow" / "1" / "model.onnx", layers=32)
    publish(tmp_path, "other", 1, seed=2)
    with running_service(tmp_path, "--model-control-mode", "explicit") as service:
        body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [16, 32, 32, 3],
                            "data": [1] * (16 * 3072)}]}  # fmt: skip
        with httpx.Client(base_url=service.url, timeout=60) as http:
            started = time.perf_counter()
            assert http.post("/v2/models/slow/infer", json=body).status_code == 200
            run = time.perf_counter() - started
            assert run > 0.3, f"the slow model runs in {run:.2f} s; the test needs longer"

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            inflight = [
                pool.submit(httpx.post, f"{service.url}/v2/models/slow/infer", json=body,
                            timeout=60)
                for _ in range(3)
            ]  # fmt: skip
            time.sleep(run / 3)  # the first batch runs, the others queue
            unload = pool.submit(
                httpx.post, f"{service.url}/v2/repository/models/slow/unload", timeout=60
            )
            answers = [f.result() for f in inflight]
            assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
            assert unload.result().status_code == 200
        assert states(service.url, "slow") == {"": "UNAVAILABLE"}
        late = httpx.post(f"{service.url}/v2/models/slow/infer", json=body, timeout=60)
        assert late.status_code == 404
        assert httpx.get(f"{service.url}/v2/health/ready").status_code == 200
