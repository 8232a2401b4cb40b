"""How the clients present an API key and speak TLS (no server code: the header names are the
protocol's, repeated here on purpose)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import grpc

__all__ = ["AUTHORIZATION", "PathLike", "bearer", "channel_credentials", "ssl_context"]

PathLike = str | os.PathLike[str]
AUTHORIZATION = "authorization"


def bearer(api_key: str) -> str:
    """The ``Authorization`` value that presents ``api_key``."""
    return f"Bearer {api_key}"


def ssl_context(
    verify: bool | PathLike | ssl.SSLContext = True, cert: tuple[PathLike, PathLike] | None = None
) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` takes: ``verify`` as is when there is nothing to add, else a
    context that trusts ``verify`` (a CA file; True: the system's CAs; False: anything) and
    presents the client certificate ``cert`` = (certificate file, key file)."""
    if isinstance(verify, bool) and cert is None:
        return verify
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is True:
        context = ssl.create_default_context()
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=os.fspath(verify))
    if cert is not None:
        context.load_cert_chain(os.fspath(cert[0]), os.fspath(cert[1]))
    return context


def channel_credentials(
    ca_file: PathLike | None = None,
    cert_file: PathLike | None = None,
    key_file: PathLike | None = None,
) -> grpc.ChannelCredentials:
    """TLS trusting ``ca_file`` (None: the system's CAs), presenting ``cert_file`` and
    ``key_file`` when given (mutual TLS)."""

    def read(path: PathLike | None) -> bytes | None:
        return None if path is None else Path(path).read_bytes()

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_file),
        private_key=read(key_file),
        certificate_chain=read(cert_file),
    )
