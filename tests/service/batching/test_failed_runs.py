"""A model run that fails, through a real serving process: only the requests of the failed
batch get an error, the generic ``inference failed`` (HTTP 500 ``internal`` / gRPC INTERNAL)
with nothing of the cause, and the service logs one line naming the model, with the cause;
requests before, after and alongside it are answered normally. The unit-level rules are in
test_batcher.py; here the failure is onnxruntime's own, raised in the model process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from service.client import GrpcClient, RequestError
from service.launcher import RunningService, running_service
from tests.service.helpers import metric
from tests.service.onnx_models import POISON, LinearModel, write_poisoned_model

DELAY_MS = 1000
LEAKS = ("onnx", "Gather", "indices", "bounds", "Traceback", "/", "model process")


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningService, LinearModel]]:
    """A service with the poisoned model twice: ``alone`` runs each request in a batch of its
    own, ``shared`` batches what arrives within a second."""
    root = tmp_path_factory.mktemp("poisoned")
    linear = write_poisoned_model(root / "alone" / "1" / "model.onnx")
    write_poisoned_model(root / "shared" / "1" / "model.onnx")
    (root / "alone" / "config.json").write_text(json.dumps({"max_batch_size": 1}))
    (root / "shared" / "config.json").write_text(
        json.dumps({"max_batch_size": 16, "max_queue_delay_ms": DELAY_MS})
    )
    with running_service(root, "--log-format", "json") as service:
        yield service, linear


def images(poisoned: bool, seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, POISON, (1, 32, 32, 3), dtype=np.uint8)
    if poisoned:
        pixels[0, 0, 0, 0] = POISON + 7
    return pixels


def rest(service: RunningService, model: str, pixels: np.ndarray) -> httpx.Response:
    body = {"model": model, "instances": pixels.tolist()}
    return httpx.post(f"{service.url}/predict", json=body, timeout=30)


def grpc_predict(service: RunningService, model: str, pixels: np.ndarray) -> Any:
    """The logits, or the :class:`RequestError` the call ended with."""
    with GrpcClient(service.grpc_target, timeout=30) as client:
        try:
            return client.predict(pixels, model=model).logits
        except RequestError as error:
            return error


def assert_generic_failure(outcome: Any) -> None:
    if isinstance(outcome, httpx.Response):
        assert outcome.status_code == 500, outcome.text
        assert outcome.json() == {"error": {"code": "internal", "message": "inference failed"}}
        text = outcome.text
    else:
        assert isinstance(outcome, RequestError), outcome
        assert (outcome.code, outcome.message) == ("INTERNAL", "inference failed")
        text = outcome.message
    assert not any(leak in text for leak in LEAKS), text


def serving_errors(service: RunningService, model: str) -> list[dict[str, Any]]:
    """The serving process's error lines that name ``model``."""
    lines = [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line["pid"] == service.process.pid
        and line["level"] == "error"
        and f"model {model} " in line["message"]
    ]


def test_a_failing_request_fails_alone_among_concurrent_ones(
    reference: tuple[RunningService, LinearModel],
) -> None:
    service, linear = reference
    assert rest(service, "alone", images(False, 0)).status_code == 200  # before
    errors_before = len(serving_errors(service, "alone"))
    calls = [(poisoned, seed % 2 == 0) for seed, poisoned in enumerate([False] * 6 + [True] * 2)]
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [
            pool.submit(rest if over_rest else grpc_predict, service, "alone", images(bad, seed))
            for seed, (bad, over_rest) in enumerate(calls)
        ]
        outcomes = [future.result() for future in futures]
    for seed, ((bad, _), outcome) in enumerate(zip(calls, outcomes, strict=True)):
        if bad:
            assert_generic_failure(outcome)
            continue
        logits = outcome.json()["logits"] if isinstance(outcome, httpx.Response) else outcome
        np.testing.assert_allclose(logits, linear.logits(images(False, seed)), atol=1e-4)
    after = rest(service, "alone", images(False, 1))  # the model process survived
    assert after.status_code == 200
    failures = serving_errors(service, "alone")[errors_before:]
    assert len(failures) == 2  # one line per failed batch (of one request each)
    assert all("inference failed for model alone version 1" in f["message"] for f in failures)


def test_a_failed_run_leaves_one_json_log_line_with_its_cause(
    reference: tuple[RunningService, LinearModel],
) -> None:
    service, _ = reference
    logged = len(service.log())
    assert_generic_failure(rest(service, "alone", images(True, 20)))
    (line,) = service.log()[logged:].splitlines()  # onnxruntime's own logger stays quiet
    entry = json.loads(line)
    assert (entry["pid"], entry["level"]) == (service.process.pid, "error")
    assert entry["message"] == (
        "inference failed for model alone version 1 (batch of 1 requests); failing only those"
    )
    assert "indices element out of data bounds" in entry["exception"]  # in the log, not the answer
    assert "run_batch" in entry["exception"]  # with the model process's traceback


def test_a_failed_batch_fails_its_requests_only(
    reference: tuple[RunningService, LinearModel],
) -> None:
    service, _ = reference
    errors_before = len(serving_errors(service, "shared"))
    with ThreadPoolExecutor(3) as pool:
        batch = [
            pool.submit(rest, service, "shared", images(False, 10)),
            pool.submit(grpc_predict, service, "shared", images(False, 11)),
            pool.submit(rest, service, "shared", images(True, 12)),
        ]
        deadline = time.monotonic() + 10
        while metric(service.url, "service_queue_depth", model="shared") < len(batch):
            assert time.monotonic() < deadline, "the requests never queued together"
            time.sleep(0.02)
        for future in batch:  # one batch, one failed run: all of its requests fail
            assert_generic_failure(future.result())
    next_batch = rest(service, "shared", images(False, 13))
    assert next_batch.status_code == 200
    (failure,) = serving_errors(service, "shared")[errors_before:]
    assert "inference failed for model shared version 1 (batch of 3 requests)" in failure["message"]
