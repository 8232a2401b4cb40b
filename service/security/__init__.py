"""Access control (API keys), TLS and CORS: transport-neutral, read from the settings once.

The transports apply them: ``service/rest/security.py`` (an ASGI middleware, CORS) and
``service/grpc/security.py`` (a server interceptor, server credentials). Everything is off
unless configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.security.errors import SecurityConfigError
from service.security.keys import ApiKeys
from service.security.tls import TlsFiles

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["ApiKeys", "Security", "SecurityConfigError", "TlsFiles"]


@dataclass(frozen=True)
class Security:
    """What a serving process applies: keys (None: no access control), TLS files (None:
    plain text) and the origins allowed by CORS (empty: CORS off)."""

    keys: ApiKeys | None = None
    tls: TlsFiles | None = None
    cors_origins: Sequence[str] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Security:
        """Read and check the files the settings name; :class:`SecurityConfigError`."""
        keys = None
        if settings.api_keys or settings.api_keys_file is not None:
            keys = ApiKeys(
                (k.get_secret_value() for k in settings.api_keys), settings.api_keys_file
            )
        tls = TlsFiles.load(
            settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
        )
        return cls(keys, tls, tuple(settings.cors_origins))

    def describe(self) -> list[str]:
        """One line per feature that is on, for the start-up log (no key, ever)."""
        lines = []
        if self.keys is not None:
            source = f" (and the file {self.keys.file})" if self.keys.file else ""
            lines.append(f"access control on: {len(self.keys)} API key(s) in force{source}")
        if self.tls is not None:
            clients = "; client certificates required" if self.tls.mutual else ""
            lines.append(f"TLS on both listeners{clients}")
        if self.cors_origins:
            lines.append(f"CORS on for {', '.join(self.cors_origins)}")
        return lines
