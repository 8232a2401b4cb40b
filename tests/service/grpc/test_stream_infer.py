"""Triton's ``ModelStreamInfer`` against the real server (in-process): with tritonclient's
stream API, with a raw ``grpc.aio`` stub, and the servicer alone for its backpressure."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.activations import softmax
from service.grpc.inference import MAX_STREAM_IN_FLIGHT, InferenceServicer
from tests.service.helpers import InProcessService
from tests.service.onnx_models import LinearModel

TOL = {"rtol": 1e-5, "atol": 1e-5}
WAIT = 30.0
"""Seconds any one answer (or the server's clean-up) may take before the test fails."""

Answer = tuple[Any, InferenceServerException | None]


# -- tritonclient ----------------------------------------------------------------------------
@pytest.fixture
def client(served: InProcessService) -> Iterator[Any]:
    opened = triton.InferenceServerClient(served.grpc_target)
    yield opened
    opened.close()


@pytest.fixture
def stream(client: Any) -> Iterator[queue.Queue[Answer]]:
    """The client's stream, started; its callbacks' (result, error) pairs, as they come."""
    answers: queue.Queue[Answer] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    yield answers
    client.stop_stream()


def _input(pixels: np.ndarray) -> Any:
    tensor = triton.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    return tensor


def _collect(answers: queue.Queue[Answer], count: int) -> list[Answer]:
    return [answers.get(timeout=WAIT) for _ in range(count)]


def _by_id(answered: list[Answer]) -> dict[str, Any]:
    results = {}
    for result, error in answered:
        assert error is None, error
        results[result.get_response().id] = result
    assert len(results) == len(answered), "ids answered more than once"
    return results


def _batches(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (1 + i % 3, 32, 32, 3), dtype=np.uint8) for i in range(count)]


def test_stream_results_equal_unary_infer(client: Any, stream: queue.Queue[Answer]) -> None:
    batches = _batches(5)
    for i, pixels in enumerate(batches):
        client.async_stream_infer("cifar10", [_input(pixels)], request_id=f"r-{i}")
    results = _by_id(_collect(stream, len(batches)))
    assert sorted(results) == [f"r-{i}" for i in range(len(batches))]
    for i, pixels in enumerate(batches):
        unary = client.infer("cifar10", [_input(pixels)], request_id=f"r-{i}")
        streamed = results[f"r-{i}"]
        for name in ("logits", "probabilities"):
            np.testing.assert_array_equal(streamed.as_numpy(name), unary.as_numpy(name))
        assert streamed.get_response().model_version == unary.get_response().model_version


def test_a_failed_request_does_not_end_the_stream(
    client: Any, stream: queue.Queue[Answer], references: dict[tuple[str, int], LinearModel]
) -> None:
    good = _batches(3)
    wrong_shape = triton.InferInput("images", [1, 3, 32, 32], "UINT8")
    wrong_shape.set_data_from_numpy(np.zeros((1, 3, 32, 32), np.uint8))
    client.async_stream_infer("cifar10", [_input(good[0])], request_id="g-0")
    client.async_stream_infer("cifar10", [wrong_shape], request_id="bad-shape")
    client.async_stream_infer("no-such-model", [_input(good[0])], request_id="bad-model")
    answered = _collect(stream, 3)
    errors = sorted(str(error.message()) for _, error in answered if error is not None)
    # The message each unary call ends with, word for word.
    expected = []
    for model, inputs in (("cifar10", [wrong_shape]), ("no-such-model", [_input(good[0])])):
        with pytest.raises(InferenceServerException) as raised:
            client.infer(model, inputs)
        expected.append(str(raised.value.message()))
    assert errors == sorted(expected)
    assert any("no-such-model" in message for message in errors)
    assert any("shape" in message and "[1, 3, 32, 32]" in message for message in errors)
    assert list(_by_id([a for a in answered if a[1] is None])) == ["g-0"]
    # The same stream goes on.
    for i, pixels in enumerate(good[1:], 1):
        client.async_stream_infer("cifar10", [_input(pixels)], request_id=f"g-{i}")
    later = _by_id(_collect(stream, 2))
    assert sorted(later) == ["g-1", "g-2"]
    for i in (1, 2):
        expected_logits = references[("cifar10", 2)].logits(good[i])
        np.testing.assert_allclose(later[f"g-{i}"].as_numpy("logits"), expected_logits, **TOL)


def test_pipelined_requests_are_all_answered(
    client: Any, stream: queue.Queue[Answer], references: dict[tuple[str, int], LinearModel]
) -> None:
    batches = _batches(32)
    for i, pixels in enumerate(batches):  # none waits for an answer
        client.async_stream_infer("cifar10", [_input(pixels)], request_id=f"p-{i}")
    results = _by_id(_collect(stream, len(batches)))
    assert sorted(results) == sorted(f"p-{i}" for i in range(len(batches)))
    for i, pixels in enumerate(batches):
        logits = references[("cifar10", 2)].logits(pixels)
        np.testing.assert_allclose(results[f"p-{i}"].as_numpy("logits"), logits, **TOL)
        np.testing.assert_allclose(
            results[f"p-{i}"].as_numpy("probabilities"), softmax(logits), **TOL
        )


# -- a raw grpc.aio stub -------------------------------------------------------------------
def _request(request_id: str, rows: int = 1, model: str = "cifar10") -> v2.ModelInferRequest:
    pixels = np.full((rows, 32, 32, 3), 7, np.uint8)
    request = v2.ModelInferRequest(model_name=model, id=request_id)
    request.inputs.add(name="images", datatype="UINT8", shape=list(pixels.shape))
    request.raw_input_contents.append(pixels.tobytes())
    return request


async def _stream_tasks(served: InProcessService) -> list[str]:
    """The server's tasks that belong to a ModelStreamInfer call, by their coroutines' names."""

    async def names() -> list[str]:
        return [
            getattr(task.get_coro(), "__qualname__", "")
            for task in asyncio.all_tasks()
            if "ModelStreamInfer" in getattr(task.get_coro(), "__qualname__", "")
        ]

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(names(), served.loop))


async def _no_stream_tasks_left(served: InProcessService) -> None:
    give_up = time.monotonic() + WAIT
    while left := await _stream_tasks(served):
        assert time.monotonic() < give_up, f"tasks outlive the call: {left}"
        await asyncio.sleep(0.05)


async def _read_all(call: Any) -> tuple[list[v2.ModelStreamInferResponse], grpc.RpcError | None]:
    """A call's answers, and the error it ended with (``None``: it ended OK)."""
    answers: list[v2.ModelStreamInferResponse] = []
    try:
        async for answer in call:
            answers.append(answer)
    except grpc.aio.AioRpcError as error:
        return answers, error
    return answers, None


def _run(served: InProcessService, test: Any) -> None:
    async def with_stub() -> None:
        async with grpc.aio.insecure_channel(served.grpc_target) as channel:
            await test(v2_grpc.GRPCInferenceServiceStub(channel))

    asyncio.run(with_stub())


def test_half_close_after_three_gets_three_answers_then_ok(served: InProcessService) -> None:
    async def test(stub: Any) -> None:
        call = stub.ModelStreamInfer(iter([_request(f"h-{i}", rows=i + 1) for i in range(3)]))
        answers = [answer async for answer in call]
        assert await call.code() == grpc.StatusCode.OK
        assert sorted(a.infer_response.id for a in answers) == ["h-0", "h-1", "h-2"]
        for answer in answers:
            assert answer.error_message == ""
            rows = int(answer.infer_response.id[-1]) + 1
            assert list(answer.infer_response.outputs[0].shape) == [rows, 10]
        await _no_stream_tasks_left(served)

    _run(served, test)


def test_error_answers_carry_the_request_id(served: InProcessService) -> None:
    bad_shape = _request("e-shape")
    bad_shape.inputs[0].shape[:] = [1, 3, 32, 32]
    requests = [
        _request("e-model", model="no-such-model"),
        bad_shape,
        v2.ModelInferRequest(id="e-empty"),
        v2.ModelInferRequest(),
        _request("e-ok"),
    ]

    async def test(stub: Any) -> None:
        answers = {a.infer_response.id: a async for a in stub.ModelStreamInfer(iter(requests))}
        assert sorted(answers) == ["", "e-empty", "e-model", "e-ok", "e-shape"]
        assert answers["e-ok"].error_message == ""
        for request in requests[:-1]:
            answer = answers[request.id]
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.ModelInfer(request)
            assert answer.error_message == raised.value.details()  # the unary call's message
            assert not answer.infer_response.outputs
        assert "no-such-model" in answers["e-model"].error_message

    _run(served, test)


def test_cancelling_mid_stream_leaves_the_server_healthy(served: InProcessService) -> None:
    async def test(stub: Any) -> None:
        async def requests() -> AsyncIterator[v2.ModelInferRequest]:
            for i in range(3):
                yield _request(f"c-{i}")
            await asyncio.Event().wait()  # never half-closes

        call = stub.ModelStreamInfer(requests())
        first = await asyncio.wait_for(call.read(), WAIT)
        assert first.infer_response.id.startswith("c-")
        call.cancel()
        assert await call.code() == grpc.StatusCode.CANCELLED
        await _no_stream_tasks_left(served)
        answer = await stub.ModelInfer(_request("after"), timeout=WAIT)
        assert answer.id == "after"
        assert list(answer.outputs[0].shape) == [1, 10]

    _run(served, test)


def test_the_calls_deadline_ends_a_stream_left_open(served: InProcessService) -> None:
    async def test(stub: Any) -> None:
        async def requests() -> AsyncIterator[v2.ModelInferRequest]:
            yield _request("d-0")
            await asyncio.Event().wait()

        answers, error = await _read_all(stub.ModelStreamInfer(requests(), timeout=2.0))
        assert error is not None
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert [a.infer_response.id for a in answers] == ["d-0"]
        await _no_stream_tasks_left(served)

    _run(served, test)


def test_a_message_that_is_no_request_ends_the_stream_invalid(served: InProcessService) -> None:
    async def raw() -> None:
        async with grpc.aio.insecure_channel(served.grpc_target) as channel:
            method = channel.stream_stream(
                "/inference.GRPCInferenceService/ModelStreamInfer",
                request_serializer=lambda data: data,
                response_deserializer=v2.ModelStreamInferResponse.FromString,
            )
            messages = [_request("x-0").SerializeToString(), b"\xff\xff\xff"]
            answers, error = await _read_all(method(iter(messages), timeout=WAIT))
            assert error is not None
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == "message 2 of the stream is not a ModelInferRequest"
            assert [a.infer_response.id for a in answers] == ["x-0"]
        await _no_stream_tasks_left(served)

    asyncio.run(raw())


# -- the servicer alone: backpressure and clean-up -----------------------------------------
class _Held(InferenceServicer):
    """Answers a request only once :attr:`go` is set; counts the requests running at once."""

    def __init__(self) -> None:
        super().__init__(plane=None)  # never reached
        self.go = asyncio.Event()
        self.running = self.most = 0

    async def _stream_answer(
        self, request: v2.ModelInferRequest, deadline: float | None
    ) -> v2.ModelStreamInferResponse:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.go.wait()
            return v2.ModelStreamInferResponse(infer_response=v2.ModelInferResponse(id=request.id))
        finally:
            self.running -= 1


class _Context:
    def time_remaining(self) -> None:
        return None


def _own_stream_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if "ModelStreamInfer" in getattr(task.get_coro(), "__qualname__", "")
    ]


def test_at_most_max_in_flight_requests_per_stream() -> None:
    total = 3 * MAX_STREAM_IN_FLIGHT
    read = 0

    async def requests() -> AsyncIterator[v2.ModelInferRequest]:
        nonlocal read
        for i in range(total):
            read += 1
            yield v2.ModelInferRequest(id=str(i))

    async def test() -> None:
        servicer = _Held()
        answers = servicer.ModelStreamInfer(requests(), _Context())
        first: asyncio.Task[v2.ModelStreamInferResponse] = asyncio.create_task(anext(answers))
        await asyncio.sleep(0.2)
        assert (read, servicer.running) == (MAX_STREAM_IN_FLIGHT, MAX_STREAM_IN_FLIGHT)
        servicer.go.set()
        ids = [(await first).infer_response.id]
        await asyncio.sleep(0.2)  # answered, but only one written: nothing more is read
        assert read == MAX_STREAM_IN_FLIGHT
        ids += [answer.infer_response.id async for answer in answers]
        assert sorted(ids, key=int) == [str(i) for i in range(total)]
        assert servicer.most == MAX_STREAM_IN_FLIGHT
        assert _own_stream_tasks() == []

    asyncio.run(test())


def test_closing_the_call_cancels_every_request_in_flight() -> None:
    async def requests() -> AsyncIterator[v2.ModelInferRequest]:
        for i in range(10):
            yield v2.ModelInferRequest(id=str(i))
        await asyncio.Event().wait()

    async def test() -> None:
        servicer = _Held()
        answers = servicer.ModelStreamInfer(requests(), _Context())
        handler: asyncio.Task[v2.ModelStreamInferResponse] = asyncio.create_task(anext(answers))
        await asyncio.sleep(0.1)
        assert servicer.running == 10
        assert len(_own_stream_tasks()) == 11  # the reader and each request
        handler.cancel()  # what grpc.aio does when the client goes or the deadline passes
        with pytest.raises(asyncio.CancelledError):
            await handler
        assert _own_stream_tasks() == []
        assert servicer.running == 0

    asyncio.run(test())
