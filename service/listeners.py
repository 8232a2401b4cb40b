"""The service's listening sockets, bound before the servers start so that a port conflict is
one clear error and several worker processes can share the ports."""

from __future__ import annotations

import socket

__all__ = ["bind_http_socket", "reserve_grpc_port"]


def _bind(host: str, port: int, transport: str, option: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise OSError(f"cannot bind {transport} to {host}:{port}: {reason}") from None
    return sock


def bind_http_socket(host: str, port: int) -> socket.socket:
    """A bound, not yet listening TCP socket for REST: connections are refused until a server
    listens on it, that is until it is ready. Raises :class:`OSError` naming the address."""
    sock = _bind(host, port, "REST", socket.SO_REUSEADDR)
    sock.set_inheritable(True)
    return sock


def reserve_grpc_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Hold ``host:port`` (a free one for 0) with ``SO_REUSEPORT`` so that only this user's
    processes can bind it too: gRPC offers no way to share a bound socket, so each worker (and
    each of a process's gRPC listeners) binds the port itself, and the kernel spreads
    connections over them. The socket never listens. A port in use is an error even where its
    holder shares it (another instance of this service): a bound socket without
    ``SO_REUSEPORT`` is tried first."""
    probe = _bind(host, port, "gRPC", socket.SO_REUSEADDR)
    port = int(probe.getsockname()[1])
    probe.close()
    sock = _bind(host, port, "gRPC", socket.SO_REUSEPORT)
    return sock, port
