"""``python -m service.probe``: exit 0 when the service on this machine is ready on both
transports (REST ``/health/ready`` answers 200 and gRPC health says SERVING), else 1.

For container health checks (the image's ``HEALTHCHECK``): it reads the same settings as the
service (``SERVICE_*`` variables, flags), so it asks the ports the service was given. Health
needs no API key.

With TLS it trusts the service's own certificate (``tls_cert_file``: the certificate the
answer must carry, whatever names it holds) and speaks TLS on both ports. With mutual TLS it
presents that same certificate and key as its client certificate: where the client CAs signed
it (and it allows client use), the check is the same as without TLS. Where they did not, no
client certificate the probe could present would be accepted; it then checks that each
listener answers TLS with the service's certificate, which proves the listeners are up (they
start listening once the models are loaded) but not readiness. See docs/security.md.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_settings import CliApp

from service.security import SecurityConfigError, TlsFiles
from service.settings import Settings

__all__ = ["main", "probe"]

ANY_ADDRESS = {"0.0.0.0", "::", ""}


class _CertificateRefusedError(Exception):
    """The service refused the probe's client certificate (mutual TLS)."""


def probe(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when both transports are ready, else what is not."""
    host = "127.0.0.1" if settings.host in ANY_ADDRESS else settings.host
    try:
        tls = TlsFiles.load(
            settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
        )
    except SecurityConfigError as exc:
        return f"TLS: {exc}"
    if tls is None:
        return _probe_plain(host, settings, timeout)
    return _probe_tls(host, settings, tls, timeout)


def _probe_plain(host: str, settings: Settings, timeout: float) -> str | None:
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

    with grpc.insecure_channel(f"{host}:{settings.grpc_port}") as channel:
        return _grpc_health(channel, timeout)


def _grpc_health(channel: Any, timeout: float) -> str | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        answer = stub.Check(request, timeout=timeout)  # type: ignore[attr-defined]
    except grpc.RpcError as exc:
        return f"gRPC: {exc.code().name}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return f"gRPC: health is {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return None


def _pinned(tls: TlsFiles, present: bool) -> ssl.SSLContext:
    """Trust the service's own certificate (chain) as the anchor, whatever names it holds."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=tls.cert.decode("ascii", "replace"))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if present:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _rest_ready(
    host: str, port: int, context: ssl.SSLContext, mutual: bool, timeout: float
) -> tuple[int, dict[str, Any]]:
    """The status of ``/health/ready`` over TLS, and the certificate the service presented."""
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
    try:
        connection.connect()  # the handshake: our verification of the service's certificate
        assert isinstance(connection.sock, ssl.SSLSocket)
        peer = connection.sock.getpeercert() or {}
        try:
            connection.request("GET", "/health/ready")
            return connection.getresponse().status, peer
        except (ssl.SSLError, ConnectionError) as exc:
            if mutual:  # TLS 1.3: the service judges our certificate after the handshake
                raise _CertificateRefusedError from exc
            raise
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        if mutual:  # TLS 1.2: it refuses our certificate during the handshake
            raise _CertificateRefusedError from exc
        raise
    finally:
        connection.close()


def _name_for(peer: dict[str, Any], host: str) -> str | None:
    """The name to check the gRPC listener's certificate against: ``host`` when the
    certificate holds it, else its first DNS name (else its common name)."""
    names = [
        value for kind, value in peer.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]
    if host in names:
        return None
    if names:
        return str(names[0])
    for field in peer.get("subject", ()):
        for key, value in field:
            if key == "commonName":
                return str(value)
    return None


def _answers_tls(host: str, port: int, context: ssl.SSLContext, timeout: float) -> str | None:
    """None when ``host:port`` completes a TLS handshake with the service's certificate (or
    gets as far as judging the probe's own)."""
    context.set_alpn_protocols(["h2"])  # gRPC refuses TLS without HTTP/2
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw) as wrapped,
        ):
            wrapped.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return f"the certificate does not verify: {exc.verify_message}"
    except ssl.SSLError:
        return None  # it answered TLS, and refused the probe's certificate
    except OSError as exc:
        return str(exc)
    return None


def _probe_tls(host: str, settings: Settings, tls: TlsFiles, timeout: float) -> str | None:
    import grpc

    context = _pinned(tls, present=tls.mutual)
    try:
        status, peer = _rest_ready(host, settings.http_port, context, tls.mutual, timeout)
    except _CertificateRefusedError:  # REST is up: it judged the probe's certificate
        grpc_problem = _answers_tls(host, settings.grpc_port, _pinned(tls, True), timeout)
        return None if grpc_problem is None else f"gRPC: {grpc_problem}"
    except ssl.SSLCertVerificationError as exc:
        return f"REST: the certificate does not verify: {exc.verify_message}"
    except OSError as exc:
        return f"REST: {exc}"
    if status != 200:
        return f"REST: /health/ready answered {status}"
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.cert,
        private_key=tls.key if tls.mutual else None,
        certificate_chain=tls.cert if tls.mutual else None,
    )
    name = _name_for(peer, host)
    options = [] if name is None else [("grpc.ssl_target_name_override", name)]
    with grpc.secure_channel(f"{host}:{settings.grpc_port}", credentials, options) as channel:
        return _grpc_health(channel, timeout)


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
