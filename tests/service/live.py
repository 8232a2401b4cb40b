"""Start ``python -m service`` as a real process on free loopback ports, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the test process dies, even if it crashes before
    its fixtures tear down (Linux; elsewhere the fixtures' own clean-up is all there is)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveService:
    process: subprocess.Popen[str]
    http_port: int
    grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextmanager
def live_service(repository: Path, *extra: str, timeout: float = 60.0) -> Iterator[LiveService]:
    """The service running on ``repository``; ready when entered, stopped (and reaped) on exit."""
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "service", "--model-repository", str(repository),
        "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--device", "cpu", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=_die_with_parent,
    )  # fmt: skip
    service = LiveService(process, http_port, grpc_port)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"service exited with {process.returncode}: {output}")
            try:
                if httpx.get(f"{service.url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("service did not become ready in time")
            time.sleep(0.1)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def run_service(
    repository: Path, *extra: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the service expecting it to exit by itself (start-up failures)."""
    port = [] if "--http-port" in extra else ["--http-port", str(free_port())]
    return subprocess.run(
        [sys.executable, "-m", "service", "--model-repository", str(repository), *port, *extra],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
