"""The README's examples (curl, Python snippets, client commands), run exactly as written,
host and port aside, against a live service with one model named cifar10."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.launcher import REPO, running_service
from tests.service.onnx_models import write_linear_model


def readme_blocks(section: str, language: str) -> list[str]:
    """The code blocks of one README section (up to the next level-2 heading)."""
    text = (REPO / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", body, re.S)


def readme_commands(section: str) -> list[str]:
    """The commands of a section's first bash block, continuation lines joined."""
    blocks = readme_blocks(section, "bash")
    assert blocks, f"no bash block under {section}"
    joined = blocks[0].replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def test_every_rest_example_works(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README examples")
    write_linear_model(tmp_path / "cifar10" / "1" / "model.onnx", metadata={"dataset": "synthetic"})
    commands = readme_commands("REST API")
    assert len(commands) >= 10
    with running_service(tmp_path) as service:
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
                assert "service_requests_total{" in done.stdout, done.stdout
                continue
            body = json.loads(done.stdout)
            assert "error" not in body, (command, body)
            if "top_k" in command:
                assert "top_k" in body
            if '"images"' in command and "/loss" in command:
                assert set(body["metrics"]) == {"accuracy", "top_5_accuracy", "ece"}


def test_grpc_and_open_inference_protocol_examples(tmp_path: Path) -> None:
    """The README's Python snippets and client commands, against a service with one model."""
    write_linear_model(tmp_path / "cifar10" / "1" / "model.onnx")
    snippets = readme_blocks("gRPC API", "python") + readme_blocks(
        "Open Inference Protocol (KServe V2)", "python"
    )
    assert len(snippets) == 3
    commands = [c for c in readme_commands("gRPC API") if "batch.npz" not in c]
    with running_service(tmp_path) as service:
        for snippet in snippets:
            code = snippet.replace("127.0.0.1:50051", f"127.0.0.1:{service.grpc_port}")
            code = code.replace("localhost:8000", f"127.0.0.1:{service.http_port}")
            done = subprocess.run(
                [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, (code, done.stderr)
            assert done.stdout.strip()
        for command in commands:
            command = command.replace("--http http://127.0.0.1:8000", f"--http {service.url}")
            command = (
                command.replace(
                    "service.client predict",
                    f"service.client --grpc 127.0.0.1:{service.grpc_port} predict",
                    1,
                )
                if "--http" not in command
                else command
            )
            done = subprocess.run(
                ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, (command, done.stderr)
            assert "examples/images/" in done.stdout


def test_model_lifecycle_examples(tmp_path: Path) -> None:
    """The repository API's commands and Python snippet, against a polling service."""
    write_linear_model(tmp_path / "cifar10" / "1" / "model.onnx")
    commands = readme_commands("Model lifecycle")
    (snippet,) = readme_blocks("Model lifecycle", "python")
    with running_service(tmp_path) as service:
        for command in commands:
            command = command.replace("localhost:8000", f"127.0.0.1:{service.http_port}")
            command = command.replace("localhost:50051", f"127.0.0.1:{service.grpc_port}")
            if command.startswith("grpcurl"):
                command = f"{Path(sys.executable).parent}/{command}"
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command], cwd=REPO, capture_output=True,
                text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stderr)
            assert "cifar10" in done.stdout, (command, done.stdout)
        code = snippet.replace("localhost:50051", f"127.0.0.1:{service.grpc_port}")
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (code, done.stderr)
        assert "READY" in done.stdout
        assert "inference_count" in done.stdout or "model_stats" in done.stdout
