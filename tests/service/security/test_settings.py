"""The security settings: how they are written, and the clear errors that stop a start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.launcher import run_service
from service.security import Security, SecurityConfigError
from service.settings import Settings
from tests.service.onnx_models import write_linear_model
from tests.service.security.certificates import Certificates
from tests.service.security.keys import KEY_A, KEY_B


def test_everything_is_off_by_default() -> None:
    security = Security.from_settings(Settings.model_validate({}))
    assert (security.keys, security.tls, tuple(security.cors_origins)) == (None, None, ())
    assert security.describe() == []


def test_keys_and_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_API_KEYS", f" {KEY_A}, {KEY_B} ,")
    monkeypatch.setenv("SERVICE_CORS_ORIGINS", "https://app.example,http://localhost:3000")
    settings = Settings.model_validate({})
    assert [k.get_secret_value() for k in settings.api_keys] == [KEY_A, KEY_B]
    assert settings.cors_origins == ("https://app.example", "http://localhost:3000")
    assert KEY_A not in repr(settings)
    assert KEY_A not in str(settings.model_dump())
    json_list = Settings.model_validate({"api_keys": f'["{KEY_A}"]'})
    assert [k.get_secret_value() for k in json_list.api_keys] == [KEY_A]


def test_a_short_key_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"api_keys": f"{KEY_A},tiny-secret"})
    assert "key 2 of 2 is 11 characters long; keys need at least 16" in str(caught.value)
    assert "tiny-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "origin", ["https://app.example/", "app.example", "https://a.example/x", "ftp://a"]
)
def test_an_origin_is_scheme_host_and_port(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings.model_validate({"cors_origins": origin})


def problem(**settings: object) -> str:
    with pytest.raises(SecurityConfigError) as caught:
        Security.from_settings(Settings.model_validate(settings))
    return str(caught.value)


def test_tls_files_go_together(certificates: Certificates) -> None:
    cert, key, ca = certificates.server_cert, certificates.server_key, certificates.ca
    assert problem(tls_cert_file=cert).startswith(
        "tls_key_file: tls_cert_file and tls_key_file go together"
    )
    assert problem(tls_key_file=key).startswith(
        "tls_cert_file: tls_cert_file and tls_key_file go together"
    )
    assert (
        problem(tls_client_ca_file=ca)
        == "tls_client_ca_file: mutual TLS needs tls_cert_file and tls_key_file too"
    )


def test_tls_files_must_exist_and_load(certificates: Certificates, tmp_path: Path) -> None:
    cert, key, ca = certificates.server_cert, certificates.server_key, certificates.ca
    absent = tmp_path / "absent.pem"
    assert (
        problem(tls_cert_file=absent, tls_key_file=key)
        == f"tls_cert_file: cannot read {absent}: No such file or directory"
    )
    assert problem(tls_cert_file=cert, tls_key_file=absent).startswith("tls_key_file: cannot read")
    text = tmp_path / "text.pem"
    text.write_text("not a certificate\n")
    assert (
        problem(tls_cert_file=text, tls_key_file=key) == f"tls_cert_file: {text} is not a PEM file"
    )
    mismatched = problem(tls_cert_file=cert, tls_key_file=certificates.client_key)
    assert mismatched.startswith(
        f"tls_key_file: {cert} and {certificates.client_key} do not load as a certificate and its key"
    )
    assert (
        problem(tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=text)
        == f"tls_client_ca_file: {text} is not a PEM file"
    )
    assert problem(tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=key).startswith(
        "tls_client_ca_file:"
    )
    tls = Security.from_settings(
        Settings.model_validate(
            {"tls_cert_file": cert, "tls_key_file": key, "tls_client_ca_file": ca}
        )
    ).tls
    assert tls is not None
    assert tls.mutual


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--api-keys", f"{KEY_A},tiny-secret"],
            "api_keys: Value error, key 2 of 2 is 11 characters long; keys need at least 16",
        ),
        (
            ["--tls-cert-file", "{cert}"],
            "tls_key_file: tls_cert_file and tls_key_file go together: give both or neither",
        ),
        (
            ["--tls-cert-file", "{cert}", "--tls-key-file", "{absent}"],
            "tls_key_file: cannot read {absent}: No such file or directory",
        ),
        (
            ["--api-keys-file", "{keys}"],
            "api_keys_file: {keys}: the key on line 1 is 11 characters long; keys need at least 16",
        ),
    ],
    ids=["short-key", "cert-without-key", "missing-key-file", "short-key-in-file"],
)
def test_the_service_refuses_to_start_with_one_clear_line(
    tmp_path: Path, certificates: Certificates, flags: list[str], expected: str
) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    names = {
        "cert": certificates.server_cert,
        "absent": tmp_path / "absent.pem",
        "keys": tmp_path / "keys",
    }
    (tmp_path / "keys").write_text("tiny-secret\n")
    done = run_service(tmp_path, *(flag.format(**names) for flag in flags))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: invalid settings: " + expected.format(**names)
    assert "tiny-secret" not in done.stderr
