"""Asynchronous calls to a running service that never raise: each returns a :class:`Call`
with its outcome, ``"ok"``, ``"shed"`` (refused because the model's queue was full: HTTP 503
with ``Retry-After`` and code ``overloaded``, or gRPC RESOURCE_EXHAUSTED), or a description of
anything else (another status, a timeout, a connection error)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import numpy as np
import orjson

from bench._http1 import Http1Connection, Response
from bench._stats import percentile_ms
from service._generated.cifar10.v1 import classifier_pb2 as pb

__all__ = [
    "OK",
    "SHED",
    "Call",
    "Caller",
    "Outcomes",
    "PredictClients",
    "grpc_outcome",
    "pixels_tensor",
    "rest_outcome",
    "timed",
]

OK, SHED = "ok", "shed"
PREDICT = "/cifar10.v1.Classifier/Predict"


@dataclass(frozen=True)
class Call:
    """One request: which transport, when it started and ended (``time.monotonic()``), and
    its outcome."""

    transport: str
    started: float
    ended: float
    outcome: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


Caller = Callable[[], Awaitable[Call]]
"""One client: each call sends one request and waits for its answer."""


@dataclass(frozen=True)
class Outcomes:
    """A summary of calls (latencies in milliseconds, ``None`` when there were none)."""

    sent: int
    admitted: int
    shed: int
    other: dict[str, int]
    """Every outcome that is neither ``"ok"`` nor ``"shed"``, with its count."""
    admitted_p50_ms: float | None
    admitted_p99_ms: float | None
    shed_p50_ms: float | None
    shed_p99_ms: float | None

    @property
    def shed_percent(self) -> float:
        return 100 * self.shed / self.sent if self.sent else 0.0

    @property
    def failures(self) -> dict[str, int]:
        """Every outcome but ``"ok"`` (``"shed"`` included), with its count."""
        return {SHED: self.shed, **self.other} if self.shed else dict(self.other)

    @classmethod
    def of(cls, calls: list[Call], unanswered: int = 0) -> Outcomes:
        """The summary of ``calls``, plus ``unanswered`` calls that never ended (hangs)."""
        counts = Counter(call.outcome for call in calls)
        if unanswered:
            counts["no answer (hang)"] += unanswered
        ok = [call.seconds for call in calls if call.outcome == OK]
        shed = [call.seconds for call in calls if call.outcome == SHED]
        return cls(
            sent=len(calls) + unanswered,
            admitted=len(ok),
            shed=len(shed),
            other={k: n for k, n in counts.items() if k not in (OK, SHED)},
            admitted_p50_ms=percentile_ms(ok, 50),
            admitted_p99_ms=percentile_ms(ok, 99),
            shed_p50_ms=percentile_ms(shed, 50),
            shed_p99_ms=percentile_ms(shed, 99),
        )


def rest_outcome(response: Response) -> str:
    """``"ok"`` for a 2xx, ``"shed"`` for a 503 overloaded with ``Retry-After``, else the status
    and error code."""
    if 200 <= response.status < 300:
        return OK
    try:
        code = orjson.loads(response.body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code = "?"
    if response.status == 503 and code == "overloaded" and "retry-after" in response.headers:
        return SHED
    return f"HTTP {response.status} {code}"


def grpc_outcome(error: grpc.aio.AioRpcError) -> str:
    """``"shed"`` for RESOURCE_EXHAUSTED, else the status name."""
    code = error.code()
    return SHED if code == grpc.StatusCode.RESOURCE_EXHAUSTED else f"gRPC {code.name}"


async def timed(transport: str, call: Callable[[], Awaitable[str]], timeout: float) -> Call:
    """Run ``call`` (which returns an outcome) within ``timeout`` seconds and time it; errors,
    closed connections and timeouts become outcomes too."""
    started = time.monotonic()
    try:
        outcome = await asyncio.wait_for(call(), timeout)
    except TimeoutError:
        outcome = f"{transport} timeout"
    except grpc.aio.AioRpcError as exc:
        outcome = grpc_outcome(exc)
    except (OSError, asyncio.IncompleteReadError) as exc:
        outcome = f"{transport} {type(exc).__name__}"
    return Call(transport, started, time.monotonic(), outcome)


def rest_caller(
    connection: Http1Connection,
    path: str,
    body: bytes,
    timeout: float,
    check: Callable[[Response], str] | None = None,
) -> Caller:
    """A client that POSTs ``body`` to ``path`` on its own connection; ``check``, if given,
    turns each 2xx response into the call's outcome (``"ok"`` or what is wrong with it)."""

    async def post() -> str:
        response = await connection.request("POST", path, body)
        outcome = rest_outcome(response)
        return check(response) if check is not None and outcome == OK else outcome

    async def call() -> Call:
        return await timed("rest", post, timeout)

    return call


def grpc_caller(
    method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    request: bytes,
    timeout: float,
    check: Callable[[bytes], str] | None = None,
) -> Caller:
    """A client that sends the serialised ``request`` to ``method``; ``check``, if given, turns
    each serialised response into the call's outcome (``"ok"`` or what is wrong with it)."""

    async def send() -> str:
        response = await method(request, timeout=timeout)
        return check(response) if check is not None else OK

    async def call() -> Call:
        return await timed("grpc", send, timeout)

    return call


def pixels_tensor(images: np.ndarray) -> pb.Tensor:
    """uint8 pixels as the Classifier API's tensor."""
    return pb.Tensor(shape=list(images.shape), dtype=pb.UINT8, data=images.tobytes())


class PredictClients:
    """Clients that predict one image: over REST (``/predict``, JSON pixels), each on an
    HTTP/1.1 connection of its own, and over gRPC (``Classifier.Predict``), on ``channels``
    channels taken in turn. Requests are encoded once: the load generator should spend its
    time sending, not encoding."""

    def __init__(
        self, http_port: int, grpc_target: str, model: str, *, timeout: float, channels: int = 1
    ) -> None:
        image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
        self._body = orjson.dumps({"model": model, "instances": image.tolist()})
        request = pb.PredictRequest(model=model, pixels=pixels_tensor(image))
        self._request = request.SerializeToString()
        self._port, self._timeout = http_port, timeout
        self._connections: list[Http1Connection] = []
        self._grpc_clients = 0
        self._channels = [grpc.aio.insecure_channel(grpc_target) for _ in range(channels)]
        self._methods: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(PREDICT) for channel in self._channels
        ]

    def rest(self) -> Caller:
        """A new REST client (its own connection)."""
        connection = Http1Connection("127.0.0.1", self._port)
        self._connections.append(connection)
        return rest_caller(connection, "/predict", self._body, self._timeout)

    def grpc(self) -> Caller:
        """A new gRPC client, on the next channel."""
        method = self._methods[self._grpc_clients % len(self._methods)]
        self._grpc_clients += 1
        return grpc_caller(method, self._request, self._timeout)

    async def aclose(self) -> None:
        for connection in self._connections:
            await connection.close()
        for channel in self._channels:
            await channel.close()
