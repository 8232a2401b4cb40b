"""Fair transports: REST requests take turns (at most ``--rest-in-flight`` in progress, the
rest waiting in order up to ``--rest-backlog``), and each transport keeps its share of a
model's queue while the other floods it. Real servers on loopback, real clients; batches are
held open by a long queue delay, so every count asserted is reached without racing the model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.client import GrpcClient, RequestError
from tests.service.helpers import InProcessService

QUEUE = 8
HOLD_MS = 1500
"""How long a batch waits for companions: long enough that requests stay queued while the
test looks, short enough that the test ends soon."""
BODY = {"model": "cifar10", "instances": np.zeros((1, 32, 32, 3), np.uint8).tolist()}


def gauge(service: InProcessService, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def queued(service: InProcessService) -> float:
    return gauge(service, "service_queue_depth", model="cifar10", version="2")


@pytest.fixture(scope="module")
def held(repository_path: Path) -> Iterator[InProcessService]:
    """A queue of 8 whose batches (of up to 32) wait 1.5 s for companions; REST turns at their
    default (half the queue: 4) and a backlog of 6."""
    service = InProcessService(
        repository_path,
        max_batch_size=32,
        max_queue_delay_ms=HOLD_MS,
        max_queue_size=QUEUE,
        rest_backlog=6,
    ).start()
    yield service
    service.stop()


def post(service: InProcessService) -> httpx.Response:
    return httpx.post(f"{service.url}/predict", json=BODY, timeout=30)


def grpc_call(client: GrpcClient) -> str:
    """One prediction over gRPC: ``OK`` or the status it was refused with."""
    try:
        client.predict(np.zeros((1, 32, 32, 3), np.uint8), model="cifar10")
    except RequestError as error:
        return error.code
    return "OK"


def test_rest_requests_past_their_turns_wait_in_order_and_all_succeed(
    held: InProcessService,
) -> None:
    with ThreadPoolExecutor(10) as pool:
        sent = [pool.submit(post, held) for _ in range(10)]
        until(lambda: gauge(held, "service_rest_waiting") == 6, "six never waited")
        assert queued(held) == QUEUE // 2  # four in progress, queued for the model
        # health, metadata and metrics never wait for a turn
        assert httpx.get(f"{held.url}/health/ready", timeout=5).status_code == 200
        assert httpx.get(f"{held.url}/v2/models/cifar10", timeout=5).status_code == 200
        assert all(f.result().status_code == 200 for f in sent)
    assert gauge(held, "service_rest_waiting") == 0


def test_past_the_backlog_a_rest_request_is_refused_at_once(held: InProcessService) -> None:
    with ThreadPoolExecutor(10) as pool:
        sent = [pool.submit(post, held) for _ in range(10)]
        until(lambda: gauge(held, "service_rest_waiting") == 6, "the backlog never filled")
        started = time.monotonic()
        refused = post(held)
        assert time.monotonic() - started < 1.0  # not held until a turn frees
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "overloaded"
        assert "6 REST requests are waiting for their turn" in error["message"]
        assert all(f.result().status_code == 200 for f in sent)


def test_a_client_that_gives_up_while_waiting_leaves_no_turn_behind(
    held: InProcessService,
) -> None:
    def impatient() -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{held.url}/predict", json=BODY, timeout=0.5)

    with ThreadPoolExecutor(8) as pool:
        first = [pool.submit(post, held) for _ in range(QUEUE // 2)]
        until(lambda: queued(held) == QUEUE // 2, "the first four never queued")
        gone = [pool.submit(impatient) for _ in range(2)]
        for future in gone:
            future.result()
        until(lambda: gauge(held, "service_rest_waiting") == 0, "the waiters never left")
        assert all(f.result().status_code == 200 for f in first)
        again = [pool.submit(post, held) for _ in range(QUEUE // 2)]
        until(lambda: queued(held) == QUEUE // 2, "a turn was lost")
        assert all(f.result().status_code == 200 for f in again)


def test_a_rest_flood_leaves_grpc_its_share_of_the_queue(held: InProcessService) -> None:
    with ThreadPoolExecutor(20) as pool, GrpcClient(held.grpc_target) as client:
        flood = [pool.submit(post, held) for _ in range(10)]
        until(lambda: queued(held) == QUEUE // 2, "REST never took its turns")

        calls: list[Future[str]] = [pool.submit(grpc_call, client) for _ in range(QUEUE // 2)]
        until(lambda: queued(held) == QUEUE, "gRPC never reached its share")
        assert all(f.result() == "OK" for f in calls)
        assert all(f.result().status_code == 200 for f in flood)


def test_a_grpc_flood_leaves_rest_its_share_of_the_queue(
    repository_path: Path,
) -> None:
    service = InProcessService(
        repository_path,
        max_batch_size=32,
        max_queue_delay_ms=HOLD_MS,
        max_queue_size=QUEUE,
    ).start()
    try:
        with ThreadPoolExecutor(24) as pool, GrpcClient(service.grpc_target) as client:
            first = pool.submit(post, service)  # queued: REST's lane is active
            until(lambda: queued(service) == 1, "the REST request never queued")
            flood = [pool.submit(grpc_call, client) for _ in range(QUEUE)]
            until(lambda: sum(f.done() for f in flood) == QUEUE // 2, "gRPC was never refused")
            assert [f.result() for f in flood if f.done()] == ["RESOURCE_EXHAUSTED"] * (QUEUE // 2)
            assert queued(service) == 1 + QUEUE // 2  # REST's share stays free for REST
            rest = [pool.submit(post, service) for _ in range(QUEUE // 2 - 1)]
            until(lambda: queued(service) == QUEUE, "REST never reached its share")
            assert all(f.result().status_code == 200 for f in [first, *rest])
            assert [f.result() for f in flood].count("OK") == QUEUE // 2
    finally:
        service.stop()
