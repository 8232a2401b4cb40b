"""Two replicas of the service behind a real nginx (deploy/local/): REST and gRPC balanced
across them; a graceful restart of one loses no request; after one is killed, only requests
in flight on it may fail and every later one succeeds. Skipped, with the reason, without
nginx."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from deploy.local.replicas import Cluster, nginx_binary, running_cluster
from service.client import GrpcClient, RequestError, RestClient
from tests.service.helpers import metric
from tests.service.onnx_models import write_linear_model

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

IMAGE = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
Record = tuple[float, float, str]  # started, ended, "ok" or what went wrong


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with running_cluster(tmp_path, 2) as running:
        yield running


def _rest(cluster: Cluster) -> Callable[[], str]:
    client = RestClient(cluster.url, timeout=30)

    def call() -> str:
        try:
            client.predict(IMAGE)
        except (RequestError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    return call


def _grpc(cluster: Cluster) -> Callable[[], str]:
    client = GrpcClient(cluster.grpc_target, timeout=30)

    def call() -> str:
        try:
            client.predict(IMAGE)
        except RequestError as exc:
            return str(exc)
        return "ok"

    return call


class Load:
    """Clients sending requests back to back through nginx on both transports."""

    def __init__(self, cluster: Cluster, clients: int = 6) -> None:
        self.calls = [_rest(cluster) for _ in range(clients)] + [
            _grpc(cluster) for _ in range(clients)
        ]
        self.records: list[Record] = []
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in self.calls]

    def _run(self, call: Callable[[], str]) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            outcome = call()
            with self.lock:
                self.records.append((started, time.monotonic(), outcome))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def failures(self, after: float = 0.0) -> list[str]:
        return [
            outcome for started, _, outcome in self.records if started >= after and outcome != "ok"
        ]


def test_both_replicas_serve_both_transports(cluster: Cluster) -> None:
    with Load(cluster) as load:
        time.sleep(1.5)
    print(f"\nboth replicas: {len(load.records)} requests, {len(load.failures())} failed")
    assert load.failures() == []
    for replica in cluster.replicas:
        assert replica.running is not None
        for transport in ("http", "grpc"):
            served = metric(replica.running.url, "service_requests_total", transport=transport)
            served = (
                sum(  # every endpoint and status of that transport
                    metric(
                        replica.running.url, "service_requests_total", transport=transport, **labels
                    )
                    for labels in ({"endpoint": "/predict", "status": "200"}, {"status": "OK"})
                )
                or served
            )
            assert served > 0, (replica, transport)


def test_a_graceful_restart_of_one_replica_loses_nothing(cluster: Cluster) -> None:
    with Load(cluster) as load:
        time.sleep(1.0)
        assert cluster.restart_replica(0) == 0
        restarted = time.monotonic()
        time.sleep(1.5)
    answered, failed = len(load.records), load.failures()
    print(f"\ngraceful restart: {answered} requests, {len(failed)} failed")
    assert failed == []
    back = cluster.replicas[0].running
    assert back is not None
    assert metric(back.url, "service_inference_batch_size_count", model="m") > 0, (
        "the restarted replica never got traffic again"
    )
    assert any(start > restarted for start, *_ in load.records)


def test_after_a_replica_is_killed_only_its_requests_in_flight_may_fail(cluster: Cluster) -> None:
    with Load(cluster) as load:
        time.sleep(1.0)
        killing = time.monotonic()
        cluster.kill_replica(1)  # returns once the process is gone
        killed = time.monotonic()
        time.sleep(2.0)
    in_flight = [r for r in load.records if r[0] < killed and r[1] > killing]
    failed = [r for r in load.records if r[2] != "ok"]
    later = [r for r in load.records if r[0] >= killed]
    print(
        f"\nSIGKILL: {len(load.records)} requests, {len(in_flight)} in flight at the kill, "
        f"{len(failed)} of them failed; {len(later)} later, all answered"
    )
    assert all(r in in_flight for r in failed), failed
    assert len(later) > 0
    assert all(outcome == "ok" for *_, outcome in later)
