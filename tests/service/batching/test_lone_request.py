"""A lone request runs at once: with batching on (and no queue delay, the default) it is handed
to the model in the same step it is queued, in a batch of its own, over both transports. No
assertion on speed: what is checked is what happened, not how long it took."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.client import GrpcClient
from tests.service.batching.test_batcher import Model, batcher, run
from tests.service.helpers import InProcessService


def test_a_lone_request_is_handed_to_the_model_in_the_step_it_is_queued() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.05)
        queue = batcher(model, max_batch_size=32)
        pending = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0)  # one step: submit ran up to its wait for the result
        assert model.runs == [["a"]]
        assert queue.waiting == 0
        assert await pending == "A"

    run(scenario)


@pytest.fixture(scope="module")
def service(repository_path: Path) -> Iterator[InProcessService]:
    running = InProcessService(repository_path, max_batch_size=32).start()
    yield running
    running.stop()


def batch_sizes(service: InProcessService) -> tuple[float, float]:
    """(model runs, rows run) for cifar10 version 2, from the batch-size histogram."""
    found = {"count": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") == "cifar10" and labels.get("version") == "2":
                if sample.name == "service_inference_batch_size_count":
                    found["count"] = sample.value
                elif sample.name == "service_inference_batch_size_sum":
                    found["sum"] = sample.value
    return found["count"], found["sum"]


def test_lone_requests_each_run_alone_over_both_transports(service: InProcessService) -> None:
    pixels = np.zeros((1, 32, 32, 3), np.uint8)
    runs, rows = batch_sizes(service)
    with GrpcClient(service.grpc_target) as client:
        for _ in range(3):
            client.predict(pixels, model="cifar10")
            answer = httpx.post(
                f"{service.url}/predict", json={"model": "cifar10", "instances": pixels.tolist()}
            )
            assert answer.status_code == 200
    after_runs, after_rows = batch_sizes(service)
    assert (after_runs - runs, after_rows - rows) == (6, 6)  # six runs of one row each
