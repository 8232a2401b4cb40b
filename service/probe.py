"""``python -m service.probe``: exit 0 when the service on this machine is ready on both
transports (REST ``/health/ready`` answers 200 and gRPC health says SERVING), else 1.

For container health checks (the image's ``HEALTHCHECK``): it reads the same settings as the
service (``SERVICE_*`` variables, flags), so it asks the ports the service was given.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import CliApp

from service.settings import Settings

__all__ = ["main", "probe"]

ANY_ADDRESS = {"0.0.0.0", "::", ""}


def probe(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when both transports are ready, else what is not."""
    host = "127.0.0.1" if settings.host in ANY_ADDRESS else settings.host
    try:
        with urllib.request.urlopen(
            f"http://{host}:{settings.http_port}/health/ready", timeout=timeout
        ) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"REST: {exc}"
    if status != 200:
        return f"REST: /health/ready answered {status}"
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{settings.grpc_port}") as channel:
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            answer = stub.Check(request, timeout=timeout)  # type: ignore[attr-defined]
        except grpc.RpcError as exc:
            return f"gRPC: {exc.code().name}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return f"gRPC: health is {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Probe once; prints what is not ready."""
    try:
        settings = CliApp.run(Settings, cli_args=list(sys.argv[1:] if argv is None else argv))
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    problem = probe(settings)
    if problem is not None:
        print(f"not ready: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
