"""The TLS files of both listeners, read and checked once at start-up.

``tls_cert_file`` and ``tls_key_file`` (PEM, the key unencrypted) turn TLS on for REST and
gRPC; ``tls_client_ca_file`` (a PEM CA bundle) also makes both require a client certificate
that one of its CAs signed (mutual TLS). The files are read when a serving process starts;
replacing them takes a restart (a rolling one with several replicas).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.security.errors import SecurityConfigError

__all__ = ["TlsFiles"]


def _read(setting: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(setting, f"cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise SecurityConfigError(setting, f"{path} is not a PEM file")
    return data


def _encrypted_key() -> bytes:
    raise SecurityConfigError("tls_key_file", "the key is encrypted; give an unencrypted key")


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc).lower().replace("_", " ")


@dataclass(frozen=True)
class TlsFiles:
    """The server certificate (chain) and key, and the client CAs for mutual TLS, as PEM."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None
    cert: bytes
    key: bytes
    client_ca: bytes | None

    @classmethod
    def load(
        cls, cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None
    ) -> TlsFiles | None:
        """The files read and checked (None when TLS is off); :class:`SecurityConfigError`
        naming the setting at fault otherwise."""
        if cert_file is None and key_file is None:
            if client_ca_file is not None:
                raise SecurityConfigError(
                    "tls_client_ca_file", "mutual TLS needs tls_cert_file and tls_key_file too"
                )
            return None
        if cert_file is None or key_file is None:
            missing = "tls_key_file" if key_file is None else "tls_cert_file"
            raise SecurityConfigError(
                missing, "tls_cert_file and tls_key_file go together: give both or neither"
            )
        cert, key = _read("tls_cert_file", cert_file), _read("tls_key_file", key_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert_file, key_file, password=_encrypted_key)
        except ssl.SSLError as exc:
            raise SecurityConfigError(
                "tls_key_file",
                f"{cert_file} and {key_file} do not load as a certificate and its key "
                f"({_reason(exc)})",
            ) from None
        client_ca = None
        if client_ca_file is not None:
            client_ca = _read("tls_client_ca_file", client_ca_file)
            try:
                context.load_verify_locations(cafile=client_ca_file)
            except ssl.SSLError as exc:
                raise SecurityConfigError(
                    "tls_client_ca_file", f"{client_ca_file} holds no usable CA ({_reason(exc)})"
                ) from None
        return cls(cert_file, key_file, client_ca_file, cert, key, client_ca)

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate."""
        return self.client_ca is not None

    def uvicorn_options(self) -> dict[str, Any]:
        """The keyword arguments of ``uvicorn.Config`` that serve these files (uvicorn wraps
        sockets handed to ``Server.serve(sockets=...)`` with them too)."""
        return {
            "ssl_certfile": str(self.cert_file),
            "ssl_keyfile": str(self.key_file),
            "ssl_ca_certs": None if self.client_ca_file is None else str(self.client_ca_file),
            "ssl_cert_reqs": ssl.CERT_REQUIRED if self.mutual else ssl.CERT_NONE,
        }
