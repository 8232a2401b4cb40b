"""The one error of the security settings."""

from __future__ import annotations

__all__ = ["SecurityConfigError"]


class SecurityConfigError(ValueError):
    """A security setting cannot be used: a file is missing or does not load, a key is too
    short, or settings that go together are not all given. Raised at start-up, before any
    port binds; ``python -m service`` prints it and exits with status 2."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message
