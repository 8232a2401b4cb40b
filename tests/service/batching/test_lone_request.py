"""A lone request runs at once: with batching on (and no queue delay, the default) it is handed
to the model without waiting, in a batch of its own, over both transports; and it runs in the
serving process itself (a lone run, without the hop to a model process) when no other request
shares the batcher, while requests that overlap go to the model process together. No assertion
on speed: what is checked is what happened, not how long it took."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.batching import BatchingOptions, DynamicBatcher, RunTimes
from service.batching import batcher as batcher_module
from service.client import GrpcClient
from service.dataplane import DataPlane
from tests.service.batching.test_batcher import Model, Observer, batcher, run
from tests.service.helpers import InProcessService, metric


def test_a_lone_request_is_handed_to_the_model_at_the_end_of_the_turn_it_is_queued() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.05)
        queue = batcher(model, max_batch_size=32)
        pending = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0)  # one step: submit ran up to its wait for the result
        assert model.runs == []  # the turn is not over: requests ready in it may still join
        await asyncio.sleep(0)  # the next turn: no timer was waited for
        assert model.runs == [["a"]]
        assert queue.waiting == 0
        assert await pending == "A"

    run(scenario)


def test_requests_ready_in_the_same_turn_leave_in_one_batch() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.01)
        queue = batcher(model, max_batch_size=32)
        results = await asyncio.gather(*(queue.submit(x, 1) for x in "abc"))
        assert results == ["A", "B", "C"]
        assert model.runs == [["a", "b", "c"]]  # not ["a"] alone, then the rest

    run(scenario)


def test_a_lane_that_does_not_gather_leaves_at_once() -> None:
    async def scenario() -> None:
        model = Model(seconds=0.01)
        queue: DynamicBatcher[str, str] = DynamicBatcher(
            "test",
            model,
            1,
            BatchingOptions.model_validate({"max_batch_size": 32}),
            Observer(),
            gather_lanes={"b"},
        )
        first = asyncio.ensure_future(queue.submit("a", 1, lane="a"))
        await asyncio.sleep(0)  # one step: "a" was handed to the model, not held for the turn
        assert model.runs == [["a"]]
        gathered = [asyncio.ensure_future(queue.submit(x, 1, lane="b")) for x in "bc"]
        await asyncio.gather(first, *gathered)
        assert model.runs == [["a"], ["b", "c"]]

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


def lone_runs(service: InProcessService) -> float:
    """Lone runs so far for cifar10 version 2."""
    return metric(service.url, "service_inference_lone_runs_total", model="cifar10", version="2")


def test_lone_requests_each_run_alone_over_both_transports(service: InProcessService) -> None:
    pixels = np.zeros((1, 32, 32, 3), np.uint8)
    runs, rows = batch_sizes(service)
    lone = lone_runs(service)
    with GrpcClient(service.grpc_target) as client:
        for _ in range(3):
            client.predict(pixels, model="cifar10")
            answer = httpx.post(
                f"{service.url}/predict", json={"model": "cifar10", "instances": pixels.tolist()}
            )
            assert answer.status_code == 200
    after_runs, after_rows = batch_sizes(service)
    assert (after_runs - runs, after_rows - rows) == (6, 6)  # six runs of one row each
    assert lone_runs(service) - lone == 6  # each in the serving process, without the hop


class Lone:
    """A stand-in for the executor's lone runs: takes (and upper-cases) what it is offered,
    unless told to decline."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.offered: list[list[str]] = []

    def __call__(self, requests: list[str]) -> asyncio.Future[tuple[list[str], RunTimes]] | None:
        self.offered.append(list(requests))
        if not self.accept:
            return None
        future: asyncio.Future[tuple[list[str], RunTimes]] = (
            asyncio.get_running_loop().create_future()
        )
        future.set_result(([r.upper() for r in requests], RunTimes(0.0, 0.0, 0.0)))
        return future


def lone_batcher(
    model: Model, lone: Lone, observer: Observer | None = None, **options: Any
) -> DynamicBatcher[str, str]:
    return DynamicBatcher(
        "test", model, 1, BatchingOptions.model_validate(options), observer or Observer(), lone
    )


def test_a_request_alone_runs_lone_one_loop_turn_later() -> None:
    async def scenario() -> None:
        model, lone, observer = Model(), Lone(), Observer()
        queue = lone_batcher(model, lone, observer)
        pending = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0)  # submit ran up to its wait; the lone turn is still to come
        assert lone.offered == []
        assert queue.waiting == 1
        assert await pending == "A"
        assert lone.offered == [["a"]]
        assert model.runs == []
        assert observer.lone == [True]

    run(scenario)


def test_requests_arriving_in_the_same_turn_are_batched_not_run_lone() -> None:
    async def scenario() -> None:
        model, lone = Model(), Lone()
        queue = lone_batcher(model, lone)
        assert list(await asyncio.gather(queue.submit("a", 1), queue.submit("b", 1))) == ["A", "B"]
        assert model.runs == [["a", "b"]]
        assert lone.offered == []

    run(scenario)


def test_a_declined_lone_run_goes_to_the_model() -> None:
    async def scenario() -> None:
        model, lone, observer = Model(), Lone(accept=False), Observer()
        queue = lone_batcher(model, lone, observer)
        assert await queue.submit("a", 1) == "A"
        assert lone.offered == [["a"]]
        assert model.runs == [["a"]]
        assert observer.lone == [False]

    run(scenario)


def test_after_requests_overlap_none_runs_lone_until_a_quiet_spell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batcher_module, "LONE_QUIET_SECONDS", 0.3)

    async def scenario() -> None:
        model, lone = Model(seconds=0.02), Lone()
        queue = lone_batcher(model, lone)
        first = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0.005)  # "a" ran lone; the next arrives while "b" is in a run
        second = asyncio.ensure_future(queue.submit("b", 1))
        await asyncio.sleep(0)
        assert await queue.submit("c", 1) == "C"  # arrived while "b" was queued or running
        await asyncio.gather(first, second)
        assert await queue.submit("d", 1) == "D"  # alone, but right after an overlap
        await asyncio.sleep(0.35)
        assert await queue.submit("e", 1) == "E"  # alone after a quiet spell
        assert lone.offered == [["a"], ["e"]]
        assert ["d"] in model.runs

    run(scenario)


def test_a_request_alone_while_the_batcher_closes_is_not_run_lone() -> None:
    async def scenario() -> None:
        model, lone = Model(), Lone()
        queue = lone_batcher(model, lone)
        pending = asyncio.ensure_future(queue.submit("a", 1))
        await asyncio.sleep(0)
        await queue.close()
        assert await pending == "A"
        assert lone.offered == []
        assert model.runs == [["a"]]

    run(scenario)


def test_a_lone_run_gives_what_the_model_process_gives(service: InProcessService) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    with GrpcClient(service.grpc_target) as client:
        before = lone_runs(service)
        pair = client.predict(pixels, model="cifar10")  # two images: never lone
        assert lone_runs(service) == before
        for row in range(2):
            alone = client.predict(pixels[row : row + 1], model="cifar10")
            np.testing.assert_allclose(alone.logits[0], pair.logits[row], rtol=1e-5, atol=1e-5)
            assert alone.probabilities is not None
            assert pair.probabilities is not None
            np.testing.assert_allclose(
                alone.probabilities[0], pair.probabilities[row], rtol=1e-5, atol=1e-6
            )
        assert lone_runs(service) == before + 2


def test_requests_that_arrive_together_go_to_the_model_process_as_one_batch(
    service: InProcessService,
) -> None:
    plane = service.plane
    assert plane is not None
    model = plane.model("cifar10")
    pixels = np.zeros((1, 32, 32, 3), np.uint8)
    lone, (runs, rows) = lone_runs(service), batch_sizes(service)

    async def together() -> None:
        await asyncio.gather(*(plane.infer(model, pixels) for _ in range(16)))

    service.call(together())
    after_runs, after_rows = batch_sizes(service)
    assert lone_runs(service) == lone
    assert after_rows - rows == 16
    assert after_runs - runs <= 2  # the first run leaves as the second request arrives
    # Right after requests overlapped, one alone still takes the hop (until a quiet spell).
    service.call(solo(plane))
    assert lone_runs(service) == lone


async def solo(plane: object) -> None:
    assert isinstance(plane, DataPlane)
    await plane.infer(plane.model("cifar10"), np.zeros((1, 32, 32, 3), np.uint8))


def test_with_lone_runs_off_every_run_takes_the_hop(repository_path: Path) -> None:
    running = InProcessService(repository_path, lone_runs=False).start()
    try:
        with GrpcClient(running.grpc_target) as client:
            client.predict(np.zeros((1, 32, 32, 3), np.uint8), model="cifar10")
        assert lone_runs(running) == 0
        assert batch_sizes(running)[0] >= 1
    finally:
        running.stop()
