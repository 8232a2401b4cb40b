"""``python -m deploy.local.replicas``: N replicas of the service on loopback behind nginx,
which balances REST (HTTP/1.1) and gRPC (HTTP/2) across them, until Ctrl+C; then each replica
drains. Needs nginx on PATH (Debian: ``apt-get install nginx``).

A replica holds nothing but its models, so any of them can answer any request: nginx sends a
request to another replica when one is draining, restarting or gone (see nginx.conf.template).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import httpx

from service.launcher import RunningService, free_port, running_service, stop_process

__all__ = ["Cluster", "Replica", "nginx_binary", "render_nginx_config", "running_cluster"]

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def nginx_binary() -> str | None:
    """nginx's path, also where Debian puts it (/usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render_nginx_config(
    replicas: Sequence[tuple[int, int]],
    *,
    http_port: int,
    grpc_port: int,
    run_dir: Path,
    host: str = "127.0.0.1",
    max_body: str = "16m",
    worker_processes: int = 1,
    down: frozenset[int] = frozenset(),
) -> str:
    """The nginx configuration for ``replicas`` given as (REST port, gRPC port) on ``host``;
    those whose index is in ``down`` are out of rotation."""

    def servers(ports: list[int]) -> str:
        return "\n".join(
            f"        server {host}:{port}{' down' if i in down else ''};"
            for i, port in enumerate(ports)
        )

    fields = {
        "WORKER_PROCESSES": str(worker_processes),
        "RUN_DIR": str(run_dir),
        "MAX_BODY": max_body,
        "HOST": host,
        "HTTP_PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        "TRIES": str(len(replicas)),
        "REST_SERVERS": servers([rest for rest, _ in replicas]),
        "GRPC_SERVERS": servers([grpc for _, grpc in replicas]),
    }
    text = Template(TEMPLATE.read_text()).safe_substitute(fields)  # leaves nginx's $variables
    assert "${" not in text, "a field of the template was not filled in"
    return text


@dataclass
class Replica:
    """One replica: its fixed ports, and its process while it runs."""

    http_port: int
    grpc_port: int
    running: RunningService | None = None
    stack: ExitStack = field(default_factory=ExitStack)


class Cluster:
    """Replicas of the service on ``repository`` and nginx in front of them."""

    def __init__(self, repository: Path, replicas: int, flags: Sequence[str] = ()) -> None:
        self.repository, self.flags = repository, tuple(flags)
        self.replicas = [Replica(free_port(), free_port()) for _ in range(replicas)]
        self.http_port, self.grpc_port = free_port(), free_port()
        self.nginx: subprocess.Popen[bytes] | None = None
        self.down: set[int] = set()
        # Workers run as an unprivileged user when nginx starts as root: they must reach here.
        self.run_dir = Path(tempfile.mkdtemp(prefix="replicas-"))
        os.chmod(self.run_dir, 0o755)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start_replica(self, index: int) -> None:
        replica = self.replicas[index]
        replica.running = replica.stack.enter_context(
            running_service(
                self.repository, *self.flags,
                http_port=replica.http_port, grpc_port=replica.grpc_port,
            )
        )  # fmt: skip

    def stop_replica(self, index: int) -> int:
        """Stop a replica gracefully (SIGTERM: it drains); its exit status."""
        replica = self.replicas[index]
        assert replica.running is not None
        process = replica.running.process
        replica.stack.close()  # SIGTERM, wait
        replica.running = None
        return process.returncode

    def restart_replica(self, index: int) -> int:
        """Restart a replica without failing a request, as a rolling update does: out of
        nginx's rotation (a graceful reload: requests in flight through it finish), stop it
        (it drains), start it on the same ports, back into rotation. Its exit status."""
        self.set_in_rotation(index, False)
        status = self.stop_replica(index)
        self.start_replica(index)
        self.set_in_rotation(index, True)
        return status

    def set_in_rotation(self, index: int, serving: bool) -> None:
        """Add a replica to nginx's rotation or take it out, and wait for the reload."""
        (self.down.discard if serving else self.down.add)(index)
        self._write_config()
        self.reload()

    def reload(self, timeout: float = 30) -> None:
        """nginx's graceful reload (SIGHUP): new workers take the new configuration; this
        returns once the old ones have finished their requests and exited."""
        assert self.nginx is not None
        old = _children(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while (now := _children(self.nginx.pid)) & old or not now:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not reload: {self.error_log()}")
            time.sleep(0.02)

    def _write_config(self) -> Path:
        config = self.run_dir / "nginx.conf"
        ports = [(r.http_port, r.grpc_port) for r in self.replicas]
        config.write_text(
            render_nginx_config(
                ports, http_port=self.http_port, grpc_port=self.grpc_port, run_dir=self.run_dir,
                down=frozenset(self.down),
            )
        )  # fmt: skip
        return config

    def kill_replica(self, index: int) -> None:
        """SIGKILL a replica (its model processes follow: they die with their parent)."""
        replica = self.replicas[index]
        assert replica.running is not None
        replica.running.process.send_signal(signal.SIGKILL)
        replica.running.process.wait()
        replica.stack.close()
        replica.running = None

    def start(self) -> None:
        for index in range(len(self.replicas)):
            self.start_replica(index)
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        config = self._write_config()
        self.nginx = subprocess.Popen(
            [
                binary,
                "-c",
                str(config),
                "-p",
                str(self.run_dir),
                "-e",
                str(self.run_dir / "error.log"),
            ]
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {self.error_log()}")
            time.sleep(0.1)

    def error_log(self) -> str:
        path = self.run_dir / "error.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.nginx is not None:
            stop_process(self.nginx, timeout=10)
        for index, replica in enumerate(self.replicas):
            if replica.running is not None:
                self.stop_replica(index)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


@contextmanager
def running_cluster(repository: Path, replicas: int, *flags: str) -> Iterator[Cluster]:
    """A started :class:`Cluster`, stopped (every process, by its pid) on exit."""
    cluster = Cluster(repository, replicas, flags)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.replicas", description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("flags", nargs="*", help="more flags for every replica, after --")
    args = parser.parse_args(argv)
    with running_cluster(args.model_repository, args.replicas, *args.flags) as cluster:
        for replica in cluster.replicas:
            print(f"replica: REST :{replica.http_port}, gRPC :{replica.grpc_port}")
        print(f"nginx: REST {cluster.url}, gRPC {cluster.grpc_target} (Ctrl+C stops all)")
        stopping = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # after the processes started
        signal.sigwait(stopping)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
