"""Start ``python -m service`` as a child process on free loopback ports, wait until it is
ready, and stop it (by its pid) afterwards: for benchmarks, tests and notebooks."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = [
    "RunningService",
    "client_ssl_context",
    "free_port",
    "run_service",
    "running_service",
    "stop_process",
    "wait_until_ready",
]

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningService:
    """A started service: its process and ports."""

    process: subprocess.Popen[str]
    http_port: int
    grpc_port: int
    output: IO[str] | None = None
    ssl_context: ssl.SSLContext | None = None
    """With TLS: what a client on this machine verifies the service with (and presents)."""

    def log(self) -> str:
        """Everything the service has written to stdout and stderr so far."""
        if self.output is None:
            return ""
        self.output.seek(0)
        return self.output.read()

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def client_ssl_context(
    ca_file: Path | None, client_cert: tuple[Path, Path] | None = None
) -> ssl.SSLContext:
    """A context that trusts ``ca_file`` and presents ``client_cert`` (certificate, key)."""
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    return context


def wait_until_ready(
    process: subprocess.Popen[Any],
    url: str,
    timeout: float,
    failed: Callable[[], str],
    *,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Poll ``url`` until it answers 200; :class:`RuntimeError` with ``failed()`` if the
    process exits first, or when ``timeout`` seconds pass. ``verify``: for ``https://``."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {failed()}")
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f} s: {failed()}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _command(repository: Path, extra: tuple[str, ...], module: str = "service") -> list[str]:
    return [sys.executable, "-m", module, "--model-repository", str(repository), *extra]


@contextmanager
def running_service(
    repository: Path,
    *extra: str,
    timeout: float = 90.0,
    http_port: int | None = None,
    grpc_port: int | None = None,
    ca_file: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
    module: str = "service",
    env: dict[str, str] | None = None,
) -> Iterator[RunningService]:
    """The service on ``repository`` with the flags ``extra``, on the given loopback ports or
    free ones: ready when entered, stopped with SIGTERM (SIGKILL after 30 s) and reaped on
    exit. If it fails to start, the error carries the end of its log.

    A service started with TLS (``--tls-cert-file`` …) is waited for over HTTPS: give the CA
    that signed its certificate as ``ca_file``, and with mutual TLS a client certificate and
    its key as ``client_cert``.

    ``module`` is what ``python -m`` runs (a benchmark's variant of the service takes the same
    flags); ``env`` is added to this process's environment."""
    http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--device", "cpu",
             "--die-with-parent"]  # fmt: skip
    output = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below
    # No preexec_fn: it would make subprocess fork this whole process and run Python in the
    # child before exec, and a process that runs gRPC does not survive that (gRPC's event
    # engine threads, restarted in the child, abort on the file descriptors they lost). The
    # service asks for its parent-death signal itself (--die-with-parent).
    process = subprocess.Popen(
        _command(repository, (*ports, *extra), module), cwd=REPO, stdout=output,
        stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    context = None
    if ca_file is not None or client_cert is not None:
        context = client_ssl_context(ca_file, client_cert)
    service = RunningService(process, http_port, grpc_port, output, context)

    def log_tail() -> str:
        return "the service's log ends:\n" + service.log()[-4000:]

    try:
        wait_until_ready(
            process, f"{service.url}/health/ready", timeout, log_tail, verify=context or True
        )
        yield service
    finally:
        stop_process(process)
        output.close()


def run_service(
    repository: Path, *extra: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the service expecting it to exit by itself (start-up failures); ``env`` replaces
    the environment."""
    port = [] if "--http-port" in extra else ["--http-port", str(free_port())]
    return subprocess.run(
        _command(repository, (*port, *extra)), cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env=env,
    )  # fmt: skip
