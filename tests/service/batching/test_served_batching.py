"""Dynamic batching through the real servers: concurrent requests share one model run and get
the logits they would get alone, a full queue is refused at once on both transports, and work
nobody waits for never runs: a gRPC call whose deadline passes while queued (both services), a
REST request past the request timeout (504), and a REST request whose client disconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.client import GrpcClient, RequestError
from tests.service.helpers import InProcessService
from tests.service.onnx_models import LinearModel

DELAY_MS = 1000
QUEUE = 8


@pytest.fixture(scope="module")
def slow(repository_path: Path) -> Iterator[InProcessService]:
    """A service whose batches wait up to a second for companions, with a short queue that
    REST requests alone may fill (by default they take turns, at most half of it)."""
    service = InProcessService(
        repository_path,
        max_batch_size=16,
        max_queue_delay_ms=DELAY_MS,
        max_queue_size=QUEUE,
        rest_in_flight=QUEUE + 1,
    ).start()
    yield service
    service.stop()


def metric(service: InProcessService, name: str, **labels: str) -> float:
    text = httpx.get(f"{service.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def model_runs(service: InProcessService) -> tuple[float, float]:
    """Model runs of cifar10 version 2 so far, and the rows they held."""
    labels = {"model": "cifar10", "version": "2"}
    return (
        metric(service, "service_inference_batch_size_count", **labels),
        metric(service, "service_inference_batch_size_sum", **labels),
    )


def test_concurrent_requests_share_one_run_and_match_unbatched(
    slow: InProcessService,
    served: InProcessService,
    references: dict[tuple[str, int], LinearModel],
) -> None:
    images = np.random.default_rng(4).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    runs, rows = model_runs(slow)

    def one(index: int) -> np.ndarray:
        with GrpcClient(slow.grpc_target) as client:
            return client.predict(images[index : index + 1], model="cifar10").logits

    started = time.monotonic()
    with ThreadPoolExecutor(len(images)) as pool:
        batched = np.concatenate(list(pool.map(one, range(len(images)))))
    assert time.monotonic() - started < DELAY_MS / 1000 + 2
    after_runs, after_rows = model_runs(slow)
    assert after_rows - rows == len(images)
    assert after_runs - runs < len(images) / 2  # coalesced, not one run per request
    np.testing.assert_allclose(
        batched, references[("cifar10", 2)].logits(images), rtol=1e-5, atol=1e-5
    )
    with GrpcClient(served.grpc_target) as alone:  # the same images, each in a run of its own
        for index, row in enumerate(batched):
            single = alone.predict(images[index : index + 1], model="cifar10").logits[0]
            np.testing.assert_allclose(row, single, rtol=1e-5, atol=1e-5)


def test_a_full_queue_is_refused_at_once_on_both_transports(slow: InProcessService) -> None:
    pixels = np.zeros((1, 32, 32, 3), np.uint8).tolist()
    body = {"model": "cifar10", "instances": pixels}
    with ThreadPoolExecutor(QUEUE) as pool:
        waiting = [
            pool.submit(httpx.post, f"{slow.url}/predict", json=body, timeout=30)
            for _ in range(QUEUE)
        ]
        deadline = time.monotonic() + 5
        while metric(slow, "service_queue_depth", model="cifar10", version="2") < QUEUE:
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.02)
        started = time.monotonic()
        refused = httpx.post(f"{slow.url}/predict", json=body, timeout=30)
        assert time.monotonic() - started < 0.5
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        with GrpcClient(slow.grpc_target) as client, pytest.raises(RequestError) as caught:
            client.predict(np.zeros((1, 32, 32, 3), np.uint8), model="cifar10")
        assert caught.value.code == "RESOURCE_EXHAUSTED"
        assert "queued (the limit); retry later" in caught.value.message
        assert all(f.result().status_code == 200 for f in waiting)
    assert metric(slow, "service_queue_rejected_total", model="cifar10", version="2") >= 2


def test_a_grpc_deadline_passing_while_queued_drops_the_call(slow: InProcessService) -> None:
    runs, rows = model_runs(slow)
    with GrpcClient(slow.grpc_target, timeout=0.2) as client, pytest.raises(RequestError) as caught:
        client.predict(np.zeros((1, 32, 32, 3), np.uint8), model="cifar10")
    assert caught.value.code == "DEADLINE_EXCEEDED"
    time.sleep(DELAY_MS / 1000 + 0.3)  # when its batch would have run
    assert model_runs(slow) == (runs, rows)
    assert metric(slow, "service_queue_depth", model="cifar10", version="2") == 0


def test_v2_and_loss_deadlines_drop_queued_calls(slow: InProcessService) -> None:
    runs, rows = model_runs(slow)
    request = v2.ModelInferRequest(model_name="cifar10")
    tensor = request.inputs.add(name="images", datatype="UINT8", shape=[1, 32, 32, 3])
    request.raw_input_contents.append(bytes(32 * 32 * 3))
    assert tensor.name == "images"
    with grpc.insecure_channel(slow.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=0.2)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    with GrpcClient(slow.grpc_target, timeout=0.2) as client, pytest.raises(RequestError) as lost:
        client.loss(
            "sparse_categorical_crossentropy", [1], images=np.zeros((1, 32, 32, 3), np.uint8),
            model="cifar10",
        )  # fmt: skip
    assert lost.value.code == "DEADLINE_EXCEEDED"
    time.sleep(DELAY_MS / 1000 + 0.3)
    assert model_runs(slow) == (runs, rows)


@pytest.fixture(scope="module")
def timed(repository_path: Path) -> Iterator[InProcessService]:
    """As ``slow``, with a REST request timeout shorter than the batching delay."""
    service = InProcessService(
        repository_path, max_batch_size=16, max_queue_delay_ms=DELAY_MS,
        request_timeout_seconds=0.3,
    ).start()  # fmt: skip
    yield service
    service.stop()


PIXELS = {"model": "cifar10", "instances": np.zeros((1, 32, 32, 3), np.uint8).tolist()}


def test_rest_request_timeout_answers_504_and_drops_the_work(timed: InProcessService) -> None:
    runs, rows = model_runs(timed)
    started = time.monotonic()
    response = httpx.post(f"{timed.url}/predict", json=PIXELS, timeout=30)
    assert response.status_code == 504, response.text
    assert time.monotonic() - started < DELAY_MS / 1000  # not after the batch ran
    assert response.json()["error"] == {
        "code": "deadline_exceeded",
        "message": "the request took longer than 0.3 s",
    }
    v2_body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                           "data": [0] * 3072}]}  # fmt: skip
    answer = httpx.post(f"{timed.url}/v2/models/cifar10/infer", json=v2_body, timeout=30)
    assert answer.status_code == 504
    assert answer.json() == {"error": "the request took longer than 0.3 s"}
    time.sleep(DELAY_MS / 1000 + 0.3)
    assert model_runs(timed) == (runs, rows)
    assert httpx.get(f"{timed.url}/models", timeout=30).status_code == 200  # fast ones pass


def test_a_rest_client_that_disconnects_cancels_its_queued_request(
    slow: InProcessService,
) -> None:
    runs, rows = model_runs(slow)
    closed = metric(slow, "service_requests_total", transport="http", status="499")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{slow.url}/predict", json=PIXELS, timeout=0.3)
    deadline = time.monotonic() + DELAY_MS / 1000
    while metric(slow, "service_requests_total", transport="http", status="499") == closed:
        assert time.monotonic() < deadline, "the request was not cancelled"
        time.sleep(0.02)
    assert metric(slow, "service_queue_depth", model="cifar10", version="2") == 0
    time.sleep(DELAY_MS / 1000 + 0.3)
    assert model_runs(slow) == (runs, rows)
