"""TLS and mutual TLS on both listeners (in-process, loopback), with the clients people use:
curl, httpx and the project's clients, gRPC channels, and tritonclient's HTTP and gRPC clients;
and the container probe under both."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import gevent.ssl
import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from service.client import GrpcClient, RequestError, RestClient
from service.probe import probe
from service.settings import Settings
from tests.service.helpers import InProcessService
from tests.service.security.certificates import Certificates

IMAGES = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
BODY = json.dumps({"model": "cifar10", "instances": IMAGES.tolist()})


@pytest.fixture(scope="module")
def tls(repository_path: Path, certificates: Certificates) -> Iterator[InProcessService]:
    service = InProcessService(
        repository_path,
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
    ).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def mutual(repository_path: Path, certificates: Certificates) -> Iterator[InProcessService]:
    service = InProcessService(
        repository_path,
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
        tls_client_ca_file=certificates.ca,
    ).start()
    yield service
    service.stop()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, timeout=30
    )


def curl_predict(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return curl(*args, f"{url}/predict", "-H", "content-type: application/json", "-d", BODY)


def assert_predicted(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert np.asarray(json.loads(done.stdout)["logits"]).shape == (3, 10)


def test_curl_with_the_ca(tls: InProcessService, certificates: Certificates) -> None:
    assert_predicted(curl_predict(tls.url, "--cacert", str(certificates.ca)))
    by_name = curl(
        "--cacert", str(certificates.ca), f"https://localhost:{tls.http_port}/health/ready"
    )
    assert by_name.returncode == 0, by_name.stderr


def test_curl_without_the_ca_does_not_trust_the_service(tls: InProcessService) -> None:
    done = curl(f"{tls.url}/health/ready")
    assert done.returncode == 60, done.stderr  # peer certificate cannot be authenticated


def test_httpx_and_the_clients_with_the_ca(
    tls: InProcessService, certificates: Certificates
) -> None:
    context = ssl.create_default_context(cafile=str(certificates.ca))
    assert httpx.get(f"{tls.url}/health/ready", verify=context).status_code == 200
    with RestClient(tls.url, verify=certificates.ca) as rest:
        assert rest.predict(IMAGES, model="cifar10").logits.shape == (3, 10)
    with GrpcClient(tls.grpc_target, ca_file=certificates.ca) as client:
        assert client.predict(IMAGES, model="cifar10").logits.shape == (3, 10)
        assert client.list_models()["cifar10"] == ["1", "2"]


def test_plain_text_to_the_tls_ports_fails(
    tls: InProcessService, certificates: Certificates
) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls.http_port}/health/live", timeout=5)
    with GrpcClient(tls.grpc_target, timeout=5) as client, pytest.raises(RequestError) as failed:
        client.list_models()
    assert failed.value.code == "UNAVAILABLE"
    with (
        GrpcClient(tls.grpc_target, timeout=5, ca_file=certificates.other_ca) as client,
        pytest.raises(RequestError),
    ):
        client.list_models()  # and TLS with a CA that did not sign the service's certificate


def triton_input(module: object, images: np.ndarray) -> object:
    tensor = module.InferInput("images", list(images.shape), "FP32")  # type: ignore[attr-defined]
    tensor.set_data_from_numpy(images.astype(np.float32))
    return tensor


def test_tritonclient_http_with_ssl(tls: InProcessService, certificates: Certificates) -> None:
    client = triton_http.InferenceServerClient(
        f"localhost:{tls.http_port}",
        ssl=True,
        ssl_options={"ca_certs": str(certificates.ca)},
        ssl_context_factory=gevent.ssl.create_default_context,
    )
    try:
        assert client.is_server_ready()
        result = client.infer("cifar10", [triton_input(triton_http, IMAGES)])
        assert result.as_numpy("probabilities").shape == (3, 10)
    finally:
        client.close()


def test_tritonclient_grpc_with_ssl(tls: InProcessService, certificates: Certificates) -> None:
    client = triton_grpc.InferenceServerClient(
        tls.grpc_target, ssl=True, root_certificates=str(certificates.ca)
    )
    try:
        assert client.is_server_ready()
        result = client.infer("cifar10", [triton_input(triton_grpc, IMAGES)])
        assert result.as_numpy("probabilities").shape == (3, 10)
    finally:
        client.close()


def test_mutual_tls_refuses_clients_without_a_certificate(
    mutual: InProcessService, certificates: Certificates
) -> None:
    ca = str(certificates.ca)
    assert curl_predict(mutual.url, "--cacert", ca).returncode != 0
    stranger = ("--cert", str(certificates.stranger_cert), "--key", str(certificates.stranger_key))
    assert curl_predict(mutual.url, "--cacert", ca, *stranger).returncode != 0
    with (
        RestClient(mutual.url, verify=certificates.ca, retries=0) as rest,
        pytest.raises(httpx.HTTPError),
    ):
        rest.predict(IMAGES, model="cifar10")
    for cert, key in ((None, None), (certificates.stranger_cert, certificates.stranger_key)):
        with GrpcClient(
            mutual.grpc_target, ca_file=certificates.ca, cert_file=cert, key_file=key, timeout=5
        ) as client:
            with pytest.raises(RequestError) as refused:
                client.list_models()
            assert refused.value.code == "UNAVAILABLE"


def test_mutual_tls_serves_clients_with_a_certificate(
    mutual: InProcessService, certificates: Certificates
) -> None:
    ca, cert, key = certificates.ca, certificates.client_cert, certificates.client_key
    assert_predicted(
        curl_predict(mutual.url, "--cacert", str(ca), "--cert", str(cert), "--key", str(key))
    )
    with RestClient(mutual.url, verify=ca, cert=(cert, key)) as rest:
        assert rest.predict(IMAGES, model="cifar10").logits.shape == (3, 10)
    with GrpcClient(mutual.grpc_target, ca_file=ca, cert_file=cert, key_file=key) as client:
        assert client.predict(IMAGES, model="cifar10").logits.shape == (3, 10)
    triton = triton_grpc.InferenceServerClient(
        mutual.grpc_target,
        ssl=True,
        root_certificates=str(ca),
        private_key=str(key),
        certificate_chain=str(cert),
    )
    try:
        result = triton.infer("cifar10", [triton_input(triton_grpc, IMAGES)])
        assert result.as_numpy("logits").shape == (3, 10)
    finally:
        triton.close()


def probe_settings(service: InProcessService, **tls: object) -> Settings:
    return Settings.model_validate(
        {"http_port": service.http_port, "grpc_port": service.settings.grpc_port, **tls}
    )


def test_the_probe_speaks_tls(tls: InProcessService, certificates: Certificates) -> None:
    files = {"tls_cert_file": certificates.server_cert, "tls_key_file": certificates.server_key}
    assert probe(probe_settings(tls, **files)) is None
    assert probe(probe_settings(tls)).startswith("REST: ")  # plain text gets nowhere


def test_the_probe_under_mutual_tls_presents_the_service_certificate(
    mutual: InProcessService, certificates: Certificates
) -> None:
    """The test CA signed the service's certificate for server and client use: the probe's
    check is complete (REST readiness and gRPC health)."""
    files = {
        "tls_cert_file": certificates.server_cert,
        "tls_key_file": certificates.server_key,
        "tls_client_ca_file": certificates.ca,
    }
    assert probe(probe_settings(mutual, **files)) is None
    mutual.plane.set_ready(False)
    try:
        assert probe(probe_settings(mutual, **files)) == "REST: /health/ready answered 503"
    finally:
        mutual.plane.set_ready(True)


def test_the_probe_when_the_client_cas_did_not_sign_the_service_certificate(
    repository_path: Path, certificates: Certificates
) -> None:
    """No certificate the probe holds is accepted: it checks that both listeners answer TLS
    with the service's certificate, and does not report a healthy service as failing."""
    files = {
        "tls_cert_file": certificates.server_cert,
        "tls_key_file": certificates.server_key,
        "tls_client_ca_file": certificates.other_ca,
    }
    service = InProcessService(repository_path, **files).start()
    try:
        assert probe(probe_settings(service, **files)) is None
        with GrpcClient(
            service.grpc_target,
            ca_file=certificates.ca,
            cert_file=certificates.stranger_cert,
            key_file=certificates.stranger_key,
        ) as client:
            assert client.list_models()["cifar10"] == ["1", "2"]
        grpc_port = service.settings.grpc_port
    finally:
        service.stop()
    stopped = Settings.model_validate(
        {"http_port": service.http_port, "grpc_port": grpc_port, **files}
    )
    assert probe(stopped, timeout=1).startswith("REST: ")


def test_the_probe_trusts_the_service_certificate_whatever_its_names(
    repository_path: Path, certificates: Certificates
) -> None:
    """A certificate made out to the service's DNS name, probed on 127.0.0.1."""
    files = {"tls_cert_file": certificates.named_cert, "tls_key_file": certificates.named_key}
    service = InProcessService(repository_path, **files).start()
    try:
        assert probe(probe_settings(service, **files)) is None
        other = {"tls_cert_file": certificates.server_cert, "tls_key_file": certificates.server_key}
        problem = probe(probe_settings(service, **other))  # not the service's certificate
        assert problem is not None
        assert "does not verify" in problem
    finally:
        service.stop()


def test_grpc_secure_channel_by_hand(tls: InProcessService, certificates: Certificates) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    credentials = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
    with grpc.secure_channel(tls.grpc_target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)  # type: ignore[attr-defined]
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
