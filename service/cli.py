"""``python -m service``: parse settings, start the models, serve (one process or several)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import CliApp

from service.cpus import usable_cpus
from service.errors import ModelLoadError
from service.execution import ThreadPlan, plan_threads
from service.lifetime import die_with_parent, run_event_loop
from service.logs import configure_logging
from service.settings import Settings

__all__ = ["main", "serve_here"]

log = logging.getLogger("service")
T = TypeVar("T")


async def serve_here(
    settings: Settings, plan: ThreadPlan, *, reuse_port: bool = False, on_ready: Any = None
) -> int:
    """Start the models, bind, and serve in this process; the exit status."""
    from service.listeners import bind_http_socket
    from service.server import serve, start_dataplane

    try:
        plane = await start_dataplane(settings, plan)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        http_socket = bind_http_socket(settings.host, settings.http_port)
        _log_plan(plan)
        return await serve(settings, plane, http_socket, reuse_port=reuse_port, on_ready=on_ready)
    except OSError as exc:
        await plane.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _log_plan(plan: ThreadPlan) -> None:
    log.info(
        "%d usable CPUs: %d serving process(es), each with %d model process(es) of %d "
        "onnxruntime thread(s) and %d executor thread(s)",
        plan.cpus, plan.workers, plan.model_processes, plan.intra_op_threads,
        plan.executor_threads,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1: cannot serve, 2: bad settings)."""
    try:
        settings = CliApp.run(Settings, cli_args=list(sys.argv[1:] if argv is None else argv))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {problems}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    from service.security import Security, SecurityConfigError

    try:
        Security.from_settings(settings)  # fail fast: key and TLS files, before any process
    except SecurityConfigError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    if settings.die_with_parent:
        die_with_parent()
    plan = plan_threads(
        cpus=usable_cpus(),
        workers=settings.workers,
        model_processes=settings.model_processes,
        intra_op_threads=settings.intra_op_threads,
        executor_threads=settings.executor_threads,
    )
    from service.repository import discover

    try:
        discover(settings.model_repository)  # fail fast, before any process starts
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if settings.workers == 1:
        return run_event_loop(serve_here(settings, plan))
    from service.workers import run_workers

    try:
        return run_workers(settings, plan)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
