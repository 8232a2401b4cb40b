"""``python -m service`` as its own process with TLS and API keys, two workers: the clients,
the client CLI and the container probe against it, and no key in its log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.client import GrpcClient, RequestError, RestClient
from service.launcher import REPO, running_service
from tests.service.onnx_models import write_linear_model
from tests.service.security.certificates import Certificates
from tests.service.security.keys import FILE_KEY, KEY_A, KEY_B


def run(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_tls_and_keys_with_two_workers(
    tmp_path: Path, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    key_file = tmp_path / "keys"
    key_file.write_text(f"{FILE_KEY}\n")
    tls = {
        "SERVICE_TLS_CERT_FILE": str(certificates.server_cert),
        "SERVICE_TLS_KEY_FILE": str(certificates.server_key),
        "SERVICE_API_KEYS": f"{KEY_A},{KEY_B}",  # the environment: flags show in process lists
    }
    for name, value in tls.items():
        monkeypatch.setenv(name, value)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with running_service(
        tmp_path,
        "--workers",
        "2",
        "--api-keys-file",
        str(key_file),
        "--log-level",
        "debug",
        ca_file=certificates.ca,
    ) as service:
        assert service.url.startswith("https://")
        for key in (
            KEY_A,
            KEY_B,
            FILE_KEY,
        ):  # new connections: the kernel spreads them over the workers
            with RestClient(service.url, api_key=key, verify=certificates.ca) as rest:
                assert rest.predict(images).logits.shape == (2, 10)
            with GrpcClient(service.grpc_target, api_key=key, ca_file=certificates.ca) as client:
                assert client.predict(images).logits.shape == (2, 10)
        with (
            RestClient(service.url, verify=certificates.ca) as rest,
            pytest.raises(RequestError) as refused,
        ):
            rest.predict(images)
        assert refused.value.status == 401
        with (
            GrpcClient(service.grpc_target, ca_file=certificates.ca) as client,
            pytest.raises(RequestError) as refused,
        ):
            client.predict(images)
        assert refused.value.code == "UNAUTHENTICATED"

        ports = ["--http-port", str(service.http_port), "--grpc-port", str(service.grpc_port)]
        probed = run("service.probe", *ports, env=dict(os.environ))
        assert probed.returncode == 0, probed.stderr

        cli = dict(os.environ, SERVICE_API_KEY=KEY_B)
        image = "examples/images/ring.png"
        over_grpc = run(
            "service.client",
            "--grpc",
            service.grpc_target,
            "--ca-file",
            str(certificates.ca),
            "predict",
            image,
            env=cli,
        )
        assert over_grpc.returncode == 0, over_grpc.stderr
        over_http = run(
            "service.client",
            "--http",
            service.url,
            "--ca-file",
            str(certificates.ca),
            "--api-key",
            KEY_A,
            "predict",
            image,
            env=dict(os.environ),
        )
        assert over_http.returncode == 0, over_http.stderr
        assert over_http.stdout == over_grpc.stdout
        without = run(
            "service.client",
            "--http",
            service.url,
            "--ca-file",
            str(certificates.ca),
            "predict",
            image,
            env=dict(os.environ),
        )
        assert without.returncode == 1
        assert "401 unauthenticated: missing or invalid credentials" in without.stderr
        log = service.log()
        assert log.count("REST listening on https://") == 2
        assert log.count("access control on: 3 API key(s) in force") == 2
        assert "TLS on both listeners" in log
        for key in (KEY_A, KEY_B, FILE_KEY):
            assert key not in log
    assert service.process.returncode == 0
