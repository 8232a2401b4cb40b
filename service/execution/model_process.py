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
import gc
import itertools
import logging
import math
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
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
from service.lifetime import die_with_parent, release_freed_memory
from service.logs import LogFormat
from service.repository import ServedModel

__all__ = ["LoadOrder", "ModelProcess", "ModelProcessConfig", "serve_models"]

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
    """What a model process needs to load models."""

    device: str
    intra_op_threads: int
    log_level: str
    log_format: LogFormat


@dataclass(frozen=True)
class LoadOrder:
    """Load ``path`` as model ``name`` version ``version``; its batches will name ``instance``
    (a reloaded version is a new instance, so that the old one can finish its batches)."""

    instance: int
    name: str
    version: int
    path: Path
    batching: BatchingOptions


class _Loader:
    """Loads models on a thread of their own, so that batches of the models already served
    keep running meanwhile (onnxruntime gives up the GIL while it builds a session)."""

    def __init__(self, config: ModelProcessConfig, reply: Callable[[object], None]) -> None:
        from service.repository._runtime import providers_for, session_options

        self._providers = providers_for(config.device)
        self._options = session_options(config.intra_op_threads)
        self._reply = reply
        self._orders: queue.SimpleQueue[tuple[int, LoadOrder]] = queue.SimpleQueue()
        self.models: dict[int, Any] = {}
        threading.Thread(target=self._work, name="model-loader", daemon=True).start()

    def submit(self, request: int, order: LoadOrder) -> None:
        self._orders.put((request, order))

    def _work(self) -> None:
        from service.repository import load_model

        while True:
            request, order = self._orders.get()
            try:
                loaded = load_model(
                    order.name, order.version, order.path, self._providers, self._options,
                    order.batching,
                )  # fmt: skip
            except ModelLoadError as exc:
                self._reply(("load_failed", request, str(exc)))
            except Exception as exc:  # anything else a damaged file may provoke
                self._reply(("load_failed", request, f"{order.path}: {exc}"))
            else:
                self.models[order.instance] = loaded
                self._reply(("loaded", request, loaded.spec))
                del loaded  # held by ``models`` alone, so that unloading frees it

    def unload(self, instance: int) -> None:
        """Drop the instance's session and hand its memory back."""
        self.models.pop(instance, None)
        gc.collect()
        release_freed_memory()


def serve_models(handle: int) -> None:
    """The model process (``python -m service.execution FD``): load and unload models when
    told, and run batches sent over the socket ``FD`` until told to stop (or it closes)."""
    from service.execution.runs import run_batch
    from service.logs import configure_logging

    die_with_parent(signal.SIGKILL)
    # The serving process decides when to stop (it drains first); signals meant for it, such
    # as Ctrl+C reaching the whole process group, must not end this process early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    connection = socket.socket(fileno=handle)
    incoming = connection.makefile("rb")
    sending = threading.Lock()

    def reply(meta: object, arrays: list[npt.NDArray[Any]] | None = None) -> None:
        with sending:
            _send(connection, meta, arrays or [])

    try:
        config: ModelProcessConfig = _read(incoming)[0]
        configure_logging(config.log_level, config.log_format)
        try:
            loader = _Loader(config, reply)
        except ModelLoadError as exc:
            reply(("failed", str(exc)))
            return
        reply(("started",))
        while True:
            meta, arrays = _read(incoming)
            if meta is None:
                return
            if meta[0] == "load":
                loader.submit(meta[1], meta[2])
                continue
            if meta[0] == "unload":
                loader.unload(meta[2])
                reply(("unloaded", meta[1]))
                continue
            _, instance, batch = meta
            try:
                output = run_batch(loader.models[instance], Batch.from_message((batch, arrays)))
            except Exception:
                # Not logged here: the serving process logs the failure once, with this
                # traceback, naming the batch's model.
                reply(("error", traceback.format_exc().rstrip()))
            else:
                output_meta, output_arrays = output.to_message()
                reply(("ok", output_meta), output_arrays)
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
        """The running batch's (or, while starting, the start-up report's) future."""
        self._control: dict[int, asyncio.Future[Any]] = {}
        """Load and unload orders awaiting their answer, by request number."""
        self._requests = itertools.count()
        self._exited = asyncio.Event()
        self._stopping = False
        self.on_exit: Callable[[], None] | None = None
        """Called once if the process ends while the service still needs it."""

    @property
    def idle(self) -> bool:
        """No batch is running in it."""
        return self._pending is None and not self.exited

    @property
    def exited(self) -> bool:
        """The process has ended."""
        return self._exited.is_set()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the process and wait until it is ready for orders. Raises
        :class:`ModelLoadError` with the process's reason if it cannot run models."""
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
            report = await self._pending
        except (EOFError, UnavailableError):
            raise ModelLoadError("the model process exited while starting") from None
        if report[0] == "failed":
            await self.stop()
            raise ModelLoadError(report[1])

    async def _order(self, kind: str, payload: object) -> Any:
        if self._transport is None or self._exited.is_set():
            raise UnavailableError("the model process is not running")
        request = next(self._requests)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._control[request] = future
        self._transport.writelines(_frame((kind, request, payload), []))
        return await future

    async def load(self, order: LoadOrder) -> ServedModel:
        """Load, warm up and keep ``order``'s model (on the process's loading thread, while
        batches go on); its spec. Raises :class:`ModelLoadError` with the reason."""
        kind, payload = await self._order("load", order)
        if kind == "load_failed":
            raise ModelLoadError(payload)
        spec: ServedModel = payload
        return spec

    async def unload(self, instance: int) -> None:
        """Drop a loaded instance (none of its batches may be running)."""
        await self._order("unload", instance)

    def run(self, instance: int, batch: Batch) -> asyncio.Future[BatchOutput]:
        """Run ``batch`` on the loaded ``instance``; its output."""
        assert self._transport is not None
        assert self._pending is None
        future: asyncio.Future[BatchOutput] = asyncio.get_running_loop().create_future()
        self._pending = future
        meta, arrays = batch.to_message()
        self._transport.writelines(_frame(("run", instance, meta), arrays))  # never blocks
        return future

    def _received(self, message: Message) -> None:
        meta, arrays = message
        if meta[0] in ("loaded", "load_failed", "unloaded"):
            future = self._control.pop(meta[1], None)
            if future is not None and not future.done():
                future.set_result((meta[0], meta[2] if len(meta) > 2 else None))
            return
        pending, self._pending = self._pending, None
        if pending is None or pending.done():
            return
        if meta[0] == "ok":
            pending.set_result(BatchOutput.from_message((meta[1], arrays)))
        elif meta[0] == "error":
            pending.set_exception(RuntimeError(f"the model process failed: {meta[1]}"))
        else:  # the start-up report
            pending.set_result(meta)

    def _ended(self) -> None:
        self._exited.set()
        pending, self._pending = self._pending, None
        waiting = [pending, *self._control.values()]
        self._control.clear()
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(UnavailableError("the model process exited"))
        if not self._stopping:
            log.error("model process %s exited unexpectedly", self.pid)
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
