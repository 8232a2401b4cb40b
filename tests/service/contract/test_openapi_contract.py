"""The REST API keeps the contract its OpenAPI document states: schemathesis (every check, every
phase) against the running service's own ``/openapi.json`` finds no failure.

Its checks cover what a client generated from the schema relies on: every status code and
content type answered is documented, bodies match their response schemas, schema-valid requests
are served (except the cross-field rules ``schemathesis.toml`` names), schema-invalid ones are
refused, unsupported methods get 405 with ``Allow``, and nothing answers 5xx. With access
control on, it also checks that the documented security is enforced.

``SCHEMATHESIS_SEED`` picks the seed (default: a fixed one, so that CI runs are repeatable;
``random`` explores new cases each run). ``SCHEMATHESIS_MAX_EXAMPLES`` searches harder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.launcher import RunningService, running_service

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")
KEY = "contract-test-key-0123456789"


def schemathesis(service: RunningService, tmp_path: Path, *options: str) -> str:
    """Run schemathesis against ``service``; its report (failing the test on any failure)."""
    seed = os.environ.get("SCHEMATHESIS_SEED", "20261129")
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40")
    command = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run",
               f"{service.url}/openapi.json", "--checks", "all", "--max-examples", examples,
               "--no-color", *options]  # fmt: skip
    if seed != "random":
        command += ["--seed", seed]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20_000:]
    return report


@pytest.fixture(scope="module")
def service(repository_path: Path) -> Iterator[RunningService]:
    # The default row limit: with a small one, schemathesis's coverage phase spends minutes
    # building arrays of exactly that many images.
    with running_service(repository_path) as running:
        yield running


def test_schemathesis_finds_no_failure(service: RunningService, tmp_path: Path) -> None:
    report = schemathesis(service, tmp_path)
    assert "No issues found" in report or " passed" in report, report[-5000:]
    assert httpx.get(f"{service.url}/health/ready").status_code == 200  # still serving


def test_schemathesis_with_access_control(repository_path: Path, tmp_path: Path) -> None:
    """With keys required, the document declares its security and every protected operation's
    401; schemathesis (which also checks that requests without the key are refused) passes."""
    with running_service(repository_path, "--api-keys", KEY) as running:
        document = httpx.get(f"{running.url}/openapi.json").json()
        assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
        assert "401" in document["paths"]["/predict"]["post"]["responses"]
        assert "security" not in document["paths"]["/health/ready"]["get"]
        schemathesis(
            running, tmp_path, "--header", f"Authorization: Bearer {KEY}",
            "--phases", "coverage,fuzzing", "--max-examples", "10",
        )  # fmt: skip
