"""The service's listening sockets, bound before the servers start so that a port conflict is
one clear error and several worker processes can share the ports."""

from __future__ import annotations

import socket

__all__ = ["bind_http_socket", "reserve_grpc_port"]


def _socket(host: str, port: int) -> tuple[socket.socket, tuple[str, int]]:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.socket(family, kind, proto), (str(address[0]), int(address[1]))


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def bind_http_socket(host: str, port: int) -> socket.socket:
    """A bound, not yet listening TCP socket for REST: connections are refused until a server
    listens on it, that is until it is ready. Raises :class:`OSError` naming the address."""
    sock, address = _socket(host, port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind REST to {host}:{port}: {_reason(exc)}") from None
    sock.set_inheritable(True)
    return sock


def reserve_grpc_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Hold ``host:port`` (a free one for 0) with ``SO_REUSEPORT`` so that only this user's
    processes can bind it too: gRPC offers no way to share a bound socket, so each worker binds
    the port itself, and the kernel spreads connections over them. The socket never listens."""
    sock, address = _socket(host, port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind gRPC to {host}:{port}: {_reason(exc)}") from None
    return sock, int(sock.getsockname()[1])
