"""A model process: loads the models and runs their batches, away from the serving process.

The serving process's event loop does the per-request work of both transports. onnxruntime
gives up the GIL while it computes but must take it back to return, and it cannot while the
busy event loop and gRPC's poller thread hold it, so a model run in a thread of the serving
process stalls both sides (measured: ~30% less throughput). In its own process a model run
shares nothing. Batches travel over a Unix socket as length-prefixed pickles (protocol 5;
numpy arrays are copied as raw buffers); the serving side writes and reads through asyncio
streams, so a large batch never blocks its event loop. One batch is in flight per process.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from service.batching import BatchingOptions
from service.errors import ModelLoadError
from service.repository import ServedModel

__all__ = ["ModelProcess", "ModelProcessConfig", "serve_models"]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!Q")
Outputs = Any
"""What a batch returns: whatever :func:`service.execution.runs.run_calls` returns."""


def _frame(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def _read(stream: BinaryIO) -> Any:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    return pickle.loads(stream.read(_LENGTH.unpack(header)[0]))


@dataclass(frozen=True)
class ModelProcessConfig:
    """What a model process needs to load the models."""

    repository: Path
    device: str
    intra_op_threads: int
    batching: BatchingOptions
    log_level: str


def serve_models(handle: int) -> None:
    """The model process (``python -m service.execution FD``): load the models, report, then
    run batches sent over the socket ``FD`` until told to stop (or the socket closes)."""
    from service.cli import configure_logging, die_with_parent
    from service.execution.runs import run_calls
    from service.repository import load_models

    die_with_parent(signal.SIGKILL)
    # The serving process decides when to stop (it drains first); signals meant for it, such
    # as Ctrl+C reaching the whole process group, must not end this process early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    connection = socket.socket(fileno=handle)
    incoming = connection.makefile("rb")
    try:
        config: ModelProcessConfig = _read(incoming)
        configure_logging(config.log_level)
        try:
            models = load_models(
                config.repository,
                device=config.device,
                intra_op_threads=config.intra_op_threads,
                batching=config.batching,
            )
        except ModelLoadError as exc:
            connection.sendall(_frame(("failed", str(exc))))
            return
        connection.sendall(_frame(("ready", [model.spec for model in models])))
        by_key = {model.spec.key: model for model in models}
        while (message := _read(incoming)) is not None:
            key, calls = message
            started = time.perf_counter()
            try:
                outputs = run_calls(by_key[key], calls)
            except Exception as exc:
                log.exception("model %s version %s failed on a batch of %d", *key, len(calls))
                reply: tuple[Any, ...] = ("error", f"{type(exc).__name__}: {exc}")
            else:
                reply = ("ok", outputs, time.perf_counter() - started)
            connection.sendall(_frame(reply))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the serving process is gone


class ModelProcess:
    """The serving process's handle on one model process."""

    def __init__(self, config: ModelProcessConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._listener: asyncio.Task[None] | None = None
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
        reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 30)
        self._pending = asyncio.get_running_loop().create_future()
        self._writer.write(_frame(self._config))
        self._listener = asyncio.create_task(self._listen(reader))
        try:
            kind, payload = await self._pending
        except EOFError:
            raise ModelLoadError("the model process exited while loading the models") from None
        if kind == "failed":
            await self.stop()
            raise ModelLoadError(payload)
        specs: list[ServedModel] = payload
        return specs

    def run(self, key: tuple[str, int], calls: list[Any]) -> asyncio.Future[tuple[Outputs, float]]:
        """Run a batch of ``calls`` on model ``key``; the outputs and the run's seconds."""
        assert self._writer is not None
        assert self._pending is None
        future: asyncio.Future[tuple[Outputs, float]] = asyncio.get_running_loop().create_future()
        self._pending = future
        self._writer.write(_frame((key, calls)))  # buffered: never blocks the event loop
        return future

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(_LENGTH.size)
                message = pickle.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))
                pending, self._pending = self._pending, None
                if pending is None or pending.done():
                    continue
                if message[0] == "ok":
                    pending.set_result((message[1], message[2]))
                elif message[0] == "error":
                    pending.set_exception(RuntimeError(f"the model process failed: {message[1]}"))
                else:  # the start-up report
                    pending.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            self._ended()

    def _ended(self) -> None:
        self._exited.set()
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(EOFError("the model process exited"))
        if not self._stopping:
            log.error("model process %s exited unexpectedly", self._process and self._process.pid)
            if self.on_exit is not None:
                self.on_exit()

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to exit (after its running batch) and reap it."""
        self._stopping = True
        if self._writer is None or self._process is None:
            return
        if not self._exited.is_set():
            try:
                self._writer.write(_frame(None))
                await asyncio.wait_for(self._exited.wait(), timeout)
            except (ConnectionError, TimeoutError):
                self._process.kill()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._writer.close()
