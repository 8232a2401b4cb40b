"""The README's REST examples, run exactly as written (host and port aside) against a live
service with one model named cifar10."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.service.live import REPO, live_service
from tests.service.onnx_models import write_linear_model


def readme_commands(section: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", body, re.S)
    assert block, f"no bash block under {section}"
    joined = block.group(1).replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def test_every_rest_example_works(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README examples")
    write_linear_model(tmp_path / "cifar10" / "1" / "model.onnx", metadata={"dataset": "synthetic"})
    commands = readme_commands("REST API")
    assert len(commands) >= 10
    with live_service(tmp_path) as service:
        for command in commands:
            command = command.replace("localhost:8000", f"127.0.0.1:{service.http_port}")
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, (command, done.stderr)
            if "/metrics" in command:
                assert "service_" in done.stdout
                continue
            body = json.loads(done.stdout)
            assert "error" not in body, (command, body)
            if "top_k" in command:
                assert "top_k" in body
            if '"images"' in command and "/loss" in command:
                assert set(body["metrics"]) == {"accuracy", "top_5_accuracy", "ece"}
