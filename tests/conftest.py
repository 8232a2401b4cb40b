"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import settings

# As the service's entry point does: onnxruntime, imported by the tests themselves, sends no
# telemetry and writes no device id.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# "ci" keeps the suite fast; HYPOTHESIS_PROFILE=thorough searches much harder.
settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
