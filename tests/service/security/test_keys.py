"""The key set: what counts as a key, the file and its re-reading, and the check itself."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

import pytest

from service.security import ApiKeys, SecurityConfigError
from service.security.credentials import (
    is_open_grpc_method,
    is_open_http_path,
    presented_key,
    presented_key_in_metadata,
)
from service.security.keys import RECHECK_SECONDS, check_key, read_key_file
from tests.service.security.keys import FILE_KEY, KEY_A, KEY_B, ROTATED_KEY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = RECHECK_SECONDS + 0.01) -> None:
        self.now += seconds


def rewrite(path: Path, text: str) -> None:
    """Replace ``path`` as Kubernetes does with a mounted secret: a new file renamed over it."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_a_key_needs_16_visible_characters() -> None:
    assert check_key("x" * 16, "k") == "x" * 16
    with pytest.raises(ValueError, match="k is 15 characters long; keys need at least 16"):
        check_key("x" * 15, "k")
    with pytest.raises(ValueError, match="visible ASCII"):
        check_key("with a space in it", "k")


def test_the_key_file_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-12-01\n\n  {KEY_A}  \n{KEY_B}\n   # old: none\n")
    assert read_key_file(path) == [KEY_A, KEY_B]
    path.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="holds no key"):
        read_key_file(path)
    path.write_text(f"{KEY_A}\nshort\n")
    with pytest.raises(ValueError, match="the key on line 2 is 5 characters long"):
        read_key_file(path)


def test_every_key_in_force_passes_and_nothing_else() -> None:
    keys = ApiKeys([KEY_A, KEY_B])
    assert len(keys) == 2
    for good in (KEY_A, KEY_B, KEY_A.encode()):
        assert keys.verify(good)
    for bad in (None, "", KEY_A[:-1], KEY_A + "x", KEY_A.upper(), FILE_KEY):
        assert not keys.verify(bad)


def test_the_check_compares_with_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: a match does not stop the comparisons, and digests of equal length are
    compared, so neither which key matched nor the keys' lengths show in the time taken."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = ApiKeys([KEY_A, KEY_B, FILE_KEY])
    for presented in (KEY_A, "nope", "a much much longer wrong key than any"):
        calls.clear()
        keys.verify(presented)
        assert calls == [(32, 32)] * 3


def test_no_key_at_all_is_an_error() -> None:
    with pytest.raises(SecurityConfigError, match="api_keys: no key given"):
        ApiKeys([])


def test_a_missing_or_empty_key_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match=r"api_keys_file: cannot read .*absent"):
        ApiKeys([], tmp_path / "absent")
    (tmp_path / "empty").write_text("# no key yet\n")
    with pytest.raises(SecurityConfigError, match=r"api_keys_file: .*holds no key"):
        ApiKeys([KEY_A], tmp_path / "empty")


def test_the_file_is_read_again_when_it_changes(key_file: Path) -> None:
    key_file.write_text(FILE_KEY + "\n")
    clock = Clock()
    keys = ApiKeys([KEY_A], key_file, clock=clock)
    assert keys.verify(FILE_KEY)
    assert keys.verify(KEY_A)
    rewrite(key_file, f"{FILE_KEY}\n{ROTATED_KEY}\n")  # step 1: add the new key
    assert not keys.verify(ROTATED_KEY)  # not looked at again within a second
    clock.advance()
    assert keys.verify(ROTATED_KEY)
    assert keys.verify(FILE_KEY)
    rewrite(key_file, f"{ROTATED_KEY}\n")  # step 2: remove the old one
    clock.advance()
    assert not keys.verify(FILE_KEY)
    assert keys.verify(ROTATED_KEY)
    assert keys.verify(KEY_A)  # the keys from the settings stay


def test_the_file_is_not_read_while_it_is_unchanged(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file.write_text(FILE_KEY)
    clock = Clock()
    keys = ApiKeys([], key_file, clock=clock)
    reads: list[Path] = []
    real = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    for _ in range(5):
        clock.advance()
        assert keys.verify(FILE_KEY)
    assert reads == []


def test_a_broken_file_keeps_the_last_good_keys_and_warns_once(
    key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file.write_text(FILE_KEY)
    clock = Clock()
    keys = ApiKeys([], key_file, clock=clock)
    caplog.set_level(logging.INFO, logger="service.security.keys")
    for broken in ("", "# all commented out\n", "short\n", None):
        if broken is None:
            key_file.unlink()
        else:
            rewrite(key_file, broken)
        for _ in range(3):
            clock.advance()
            assert keys.verify(FILE_KEY)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "keeping the 1 key(s) in force" in warnings[0].getMessage()
    rewrite(key_file, ROTATED_KEY)  # good again: read, and a later problem warns again
    clock.advance()
    assert keys.verify(ROTATED_KEY)
    assert not keys.verify(FILE_KEY)
    key_file.unlink()
    clock.advance()
    assert keys.verify(ROTATED_KEY)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    for key in (FILE_KEY, ROTATED_KEY, "short"):
        assert key not in caplog.text


@pytest.mark.parametrize(
    ("authorization", "api_key", "expected"),
    [
        (f"Bearer {KEY_A}", None, KEY_A),
        (f"bearer   {KEY_A} ", None, KEY_A),
        (None, KEY_B, KEY_B),
        (f"Bearer {KEY_A}", KEY_B, KEY_A),
        (f"Basic {KEY_A}", KEY_B, KEY_B),  # not a bearer token: the other header counts
        ("Bearer", None, None),
        ("Bearer ", " ", None),
        (None, None, None),
    ],
)
def test_presented_key(
    authorization: str | None, api_key: str | None, expected: str | None
) -> None:
    got = presented_key(authorization, api_key)
    assert got == (None if expected is None else expected.encode())
    metadata = [(n, v) for n, v in (("authorization", authorization), ("x-api-key", api_key)) if v]
    assert presented_key_in_metadata(metadata) == got


def test_what_is_open() -> None:
    for path in (
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v2/health/ready",
        "/docs",
        "/openapi.json",
    ):
        assert is_open_http_path(path)
    for path in (
        "/",
        "/v2",
        "/models",
        "/predict",
        "/v2/models/cifar10/ready",
        "/health/ready/",
        "//metrics",
        "/metrics/x",
    ):
        assert not is_open_http_path(path)
    for method in (
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
    ):
        assert is_open_grpc_method(method)
    for method in (
        "/inference.GRPCInferenceService/ModelReady",
        "/inference.GRPCInferenceService/ServerMetadata",
        "/cifar10.v1.Classifier/ListModels",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.HealthX/Check",
    ):
        assert not is_open_grpc_method(method)
