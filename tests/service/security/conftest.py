"""Fixtures of the security tests: keys, and certificates made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.security.certificates import Certificates, make_certificates


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA, a server certificate for 127.0.0.1 and localhost, and client certificates."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "api-keys"
