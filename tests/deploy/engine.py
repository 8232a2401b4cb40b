"""The Docker engine and docker-compose, as the container tests find them: the machine's
``docker`` CLI when its engine answers, and ``compose-local`` from the workplace's shared tools
when present (an engine without a bridge network: host networking), else ``docker compose``."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache

from service.launcher import REPO

__all__ = [
    "COMPOSE_LOCAL",
    "compose",
    "compose_command",
    "container_logs",
    "docker",
    "engine_problem",
]

COMPOSE_LOCAL = REPO.parent / "shared" / "tools" / "compose-local"
# Debian's docker CLI builds with BuildKit; another CLI earlier on PATH may want buildx.
ENV = {**os.environ, "PATH": "/usr/bin:" + os.environ.get("PATH", ""), "DOCKER_BUILDKIT": "1"}


@cache
def engine_problem() -> str | None:
    """None when a Docker engine answers, else why the container tests cannot run."""
    if shutil.which("docker", path=ENV["PATH"]) is None:
        return "no docker CLI on this machine"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=20, env=ENV,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if info.returncode != 0:
        return f"no Docker engine reachable ({info.stderr.strip().splitlines()[-1:]})"
    if compose_command() is None:
        return "no docker-compose on this machine"
    if not COMPOSE_LOCAL.is_file():
        bridge = subprocess.run(
            ["docker", "network", "inspect", "bridge"], capture_output=True, env=ENV
        )
        if bridge.returncode != 0:  # published ports cannot work: compose-local is needed
            return f"the Docker engine has no bridge network and {COMPOSE_LOCAL} is missing"
    return None


@cache
def compose_command() -> list[str] | None:
    """How to run docker-compose on the project's file here."""
    if COMPOSE_LOCAL.is_file():
        return [str(COMPOSE_LOCAL)]
    if shutil.which("docker-compose", path=ENV["PATH"]):
        return ["docker-compose", "--project-directory", str(REPO)]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, env=ENV)
    return (
        ["docker", "compose", "--project-directory", str(REPO)] if probe.returncode == 0 else None
    )


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``docker ARGS``' standard output."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=REPO
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def container_logs(container: str, tail: int | None = None) -> str:
    """What a container wrote to stdout and stderr."""
    limit = ["--tail", str(tail)] if tail else []
    done = subprocess.run(
        ["docker", "logs", *limit, container], capture_output=True, text=True, timeout=60, env=ENV
    )
    return done.stdout + done.stderr


def compose(
    *args: str, env: dict[str, str], timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """docker-compose ``ARGS`` on the project's docker-compose.yml, with ``env`` added."""
    command = compose_command()
    assert command is not None
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout,
        env={**ENV, **env}, cwd=REPO,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(
            f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done
