"""The API keys in force and the one check every transport calls.

Keys come from the settings (``api_keys``) and from a file (``api_keys_file``, one key per
line, blank lines and ``#`` comments ignored). The file is looked at again at most once a
second, on the request path: one ``stat`` call, and a read only when its modification time,
size or inode changed (a Kubernetes secret's mounted file is replaced by a new one when the
secret is updated). A file that turns unreadable, empty or invalid leaves the last good keys in
force, with one warning until it is good again.

Only SHA-256 digests of the keys are kept. A presented key is hashed once and compared with
every digest with :func:`hmac.compare_digest`, without stopping at a match, so that the time a
check takes tells neither whether nor which key matched, nor how long the keys are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from service.security.errors import SecurityConfigError

__all__ = ["MIN_KEY_LENGTH", "RECHECK_SECONDS", "ApiKeys", "check_key", "read_key_file"]

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 16
RECHECK_SECONDS = 1.0
"""How often, at most, the key file's modification time is looked at."""


def check_key(key: str, where: str) -> str:
    """``key`` if it is usable (at least :data:`MIN_KEY_LENGTH` visible ASCII characters),
    else :class:`ValueError` naming ``where`` it came from, never the key itself."""
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(
            f"{where} is {len(key)} characters long; keys need at least {MIN_KEY_LENGTH}"
        )
    if not all("!" <= c <= "~" for c in key):
        raise ValueError(f"{where} has characters other than visible ASCII (no spaces)")
    return key


def read_key_file(path: Path) -> list[str]:
    """The keys in ``path``: one per line, blank lines and ``#`` comments ignored.
    :class:`OSError` when it cannot be read, :class:`ValueError` when a key is unusable or
    there is none."""
    text = path.read_text(encoding="utf-8", errors="replace")
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if key and not key.startswith("#"):
            keys.append(check_key(key, f"the key on line {number}"))
    if not keys:
        raise ValueError("it holds no key")
    return keys


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


def _stamp(path: Path) -> tuple[int, ...]:
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino, stat.st_dev)


class ApiKeys:
    """The set of keys in force: ``keys`` (from the settings) and those in ``file``.

    Raises :class:`SecurityConfigError` when the file cannot be read or holds no usable key,
    or when there is no key at all."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        file: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            self._fixed = tuple(_digest(check_key(k, "an API key")) for k in keys)
        except ValueError as exc:
            raise SecurityConfigError("api_keys", str(exc)) from None
        self._file, self._clock = file, clock
        self._from_file: tuple[bytes, ...] = ()
        self._stamp: tuple[int, ...] | None = None
        self._next_look = 0.0
        self._warned = False
        if file is not None:
            try:
                self._stamp = _stamp(file)
                self._from_file = tuple(_digest(k) for k in read_key_file(file))
            except OSError as exc:
                raise SecurityConfigError(
                    "api_keys_file", f"cannot read {file}: {exc.strerror or exc}"
                ) from None
            except ValueError as exc:
                raise SecurityConfigError("api_keys_file", f"{file}: {exc}") from None
            self._next_look = clock() + RECHECK_SECONDS
        self._digests = self._fixed + self._from_file
        if not self._digests:
            raise SecurityConfigError("api_keys", "no key given")

    @property
    def file(self) -> Path | None:
        return self._file

    def __len__(self) -> int:
        """How many keys are in force."""
        return len(self._digests)

    def verify(self, presented: str | bytes | None) -> bool:
        """Whether ``presented`` is a key in force (``None``: no key presented)."""
        if self._file is not None:
            self._look_at_file()
        if not presented:
            return False
        digest = _digest(presented)
        matched = False
        for known in self._digests:  # every one, whatever matched before
            matched |= hmac.compare_digest(digest, known)
        return matched

    def _look_at_file(self) -> None:
        now = self._clock()
        if now < self._next_look:
            return
        self._next_look = now + RECHECK_SECONDS
        assert self._file is not None
        try:
            stamp = _stamp(self._file)
        except OSError as exc:
            self._keep(f"cannot read it: {exc.strerror or exc}")
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a bad version is read once, not every second
        try:
            keys = read_key_file(self._file)
        except OSError as exc:
            self._keep(f"cannot read it: {exc.strerror or exc}")
            return
        except ValueError as exc:
            self._keep(str(exc))
            return
        self._from_file = tuple(_digest(k) for k in keys)
        self._digests = self._fixed + self._from_file
        self._warned = False
        log.info("API key file %s read again: %d key(s) in force", self._file, len(self))

    def _keep(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "API key file %s: %s; keeping the %d key(s) in force", self._file, problem,
                len(self),
            )  # fmt: skip
