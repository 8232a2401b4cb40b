"""A model process: loads the models and runs their batches, away from the serving process.

The serving process's event loop does the per-request work of both transports. onnxruntime
gives up the GIL while it computes but must take it back to return, and it cannot while the
busy event loop and gRPC's poller thread hold it, so a model run in a thread of the serving
process stalls both sides (measured: ~30% less throughput). In its own process a model run
shares nothing. A message over the Unix socket is a small pickled header followed by the raw
bytes of its arrays; the serving side writes and reads through an asyncio transport, so a large
batch never blocks its event loop. One batch is in flight per process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from service.batching import BatchingOptions
from service.errors import ModelLoadError, UnavailableError
from service.execution.runs import Batch, BatchOutput, Message
from service.logs import LogFormat
from service.repository import ServedModel

__all__ = ["ModelProcess", "ModelProcessConfig", "serve_models"]

log = logging.getLogger(__name__)

_PREFIX = struct.Struct("!QQ")
"""Every message: the lengths of its pickled header and of its raw array bytes, then both."""


def _frame(meta: object, arrays: list[npt.NDArray[Any]]) -> list[bytes | memoryview]:
    """A message as buffers to write: the arrays travel as their raw bytes, described in the
    (small, pickled) header."""
    contiguous = [np.ascontiguousarray(a) for a in arrays]
    header = pickle.dumps(
        (meta, [(a.dtype.str, a.shape) for a in contiguous]), protocol=pickle.HIGHEST_PROTOCOL
    )
    payload = [memoryview(a).cast("B") for a in contiguous]  # type: ignore[arg-type]
    return [_PREFIX.pack(len(header), sum(a.nbytes for a in contiguous)), header, *payload]


def _unframe(header: bytes, payload: bytes) -> Message:
    meta, layouts = pickle.loads(header)
    arrays, offset = [], 0
    for dtype, shape in layouts:
        array = np.frombuffer(payload, dtype=dtype, count=math.prod(shape), offset=offset)
        arrays.append(array.reshape(shape))
        offset += array.nbytes
    return meta, arrays


def _read(stream: BinaryIO) -> Message:
    prefix = stream.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise EOFError
    header_size, payload_size = _PREFIX.unpack(prefix)
    return _unframe(stream.read(header_size), stream.read(payload_size))


def _send(connection: socket.socket, meta: object, arrays: list[npt.NDArray[Any]]) -> None:
    connection.sendall(b"".join(_frame(meta, arrays)))


@dataclass(frozen=True)
class ModelProcessConfig:
    """What a model process needs to load the models."""

    repository: Path
    device: str
    intra_op_threads: int
    batching: BatchingOptions
    log_level: str
    log_format: LogFormat


def serve_models(handle: int) -> None:
    """The model process (``python -m service.execution FD``): load the models, report, then
    run batches sent over the socket ``FD`` until told to stop (or the socket closes)."""
    from service.cli import die_with_parent
    from service.execution.runs import run_batch
    from service.logs import configure_logging
    from service.repository import load_models

    die_with_parent(signal.SIGKILL)
    # The serving process decides when to stop (it drains first); signals meant for it, such
    # as Ctrl+C reaching the whole process group, must not end this process early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    connection = socket.socket(fileno=handle)
    incoming = connection.makefile("rb")
    try:
        config: ModelProcessConfig = _read(incoming)[0]
        configure_logging(config.log_level, config.log_format)
        try:
            models = load_models(
                config.repository,
                device=config.device,
                intra_op_threads=config.intra_op_threads,
                batching=config.batching,
            )
        except ModelLoadError as exc:
            _send(connection, ("failed", str(exc)), [])
            return
        _send(connection, ("ready", [model.spec for model in models]), [])
        by_key = {model.spec.key: model for model in models}
        while True:
            meta, arrays = _read(incoming)
            if meta is None:
                return
            key, batch = meta
            started = time.perf_counter()
            try:
                output = run_batch(by_key[key], Batch.from_message((batch, arrays)))
            except Exception:
                # Not logged here: the serving process logs the failure once, with this
                # traceback, naming the batch's model.
                _send(connection, ("error", traceback.format_exc().rstrip()), [])
            else:
                meta, arrays = output.to_message()
                _send(connection, ("ok", time.perf_counter() - started, meta), arrays)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the serving process is gone


class _Frames(asyncio.Protocol):
    """Reads whole messages off the socket and hands each to ``receive``."""

    def __init__(self, receive: Callable[[Message], None], closed: Callable[[], None]) -> None:
        self._receive, self._closed = receive, closed
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _PREFIX.size:
            header_size, payload_size = _PREFIX.unpack_from(self._buffer)
            end = _PREFIX.size + header_size + payload_size
            if len(self._buffer) < end:
                return
            middle = _PREFIX.size + header_size
            message = _unframe(bytes(self._buffer[_PREFIX.size : middle]),
                               bytes(self._buffer[middle:end]))  # fmt: skip
            del self._buffer[:end]
            self._receive(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()


class ModelProcess:
    """The serving process's handle on one model process."""

    def __init__(self, config: ModelProcessConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.Future[Any] | None = None
        self._exited = asyncio.Event()
        self._stopping = False
        self.on_exit: Callable[[], None] | None = None
        """Called once if the process ends while the service still needs it."""

    @property
    def idle(self) -> bool:
        """No batch is running in it."""
        return self._pending is None and not self._exited.is_set()

    async def start(self) -> list[ServedModel]:
        """Start the process and wait until its models are loaded; their specs. Raises
        :class:`ModelLoadError` with the process's reason if it cannot serve them."""
        ours, theirs = socket.socketpair()
        # A fresh interpreter rather than multiprocessing's spawn, which would re-run the
        # caller's main module (a script, a notebook, a test runner) in the child.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "service.execution", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        loop = asyncio.get_running_loop()
        self._pending = loop.create_future()
        transport, _ = await loop.create_unix_connection(
            lambda: _Frames(self._received, self._ended), sock=ours
        )
        self._transport = transport
        transport.writelines(_frame(self._config, []))
        try:
            kind, payload = await self._pending
        except EOFError:
            raise ModelLoadError("the model process exited while loading the models") from None
        if kind == "failed":
            await self.stop()
            raise ModelLoadError(payload)
        specs: list[ServedModel] = payload
        return specs

    def run(self, key: tuple[str, int], batch: Batch) -> asyncio.Future[tuple[BatchOutput, float]]:
        """Run ``batch`` on model ``key``; its output and the run's seconds."""
        assert self._transport is not None
        assert self._pending is None
        future: asyncio.Future[tuple[BatchOutput, float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending = future
        meta, arrays = batch.to_message()
        self._transport.writelines(_frame((key, meta), arrays))  # buffered: never blocks
        return future

    def _received(self, message: Message) -> None:
        pending, self._pending = self._pending, None
        if pending is None or pending.done():
            return
        meta, arrays = message
        if meta[0] == "ok":
            _, seconds, output = meta
            pending.set_result((BatchOutput.from_message((output, arrays)), seconds))
        elif meta[0] == "error":
            pending.set_exception(RuntimeError(f"the model process failed: {meta[1]}"))
        else:  # the start-up report
            pending.set_result(meta)

    def _ended(self) -> None:
        self._exited.set()
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(UnavailableError("the model process exited"))
        if not self._stopping:
            log.error("model process %s exited unexpectedly", self._process and self._process.pid)
            if self.on_exit is not None:
                self.on_exit()

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the process to exit (after its running batch) and reap it."""
        self._stopping = True
        if self._transport is None or self._process is None:
            return
        if not self._exited.is_set():
            self._transport.writelines(_frame(None, []))
            try:
                await asyncio.wait_for(self._exited.wait(), timeout)
            except TimeoutError:
                self._process.kill()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._transport.close()
