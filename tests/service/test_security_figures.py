"""docs/security.md's counts of malformed request kinds are those of the test catalogs."""

from __future__ import annotations

import re
from pathlib import Path

from tests.service.grpc.test_fuzz import MUTATIONS
from tests.service.rest.test_errors import LOSS_CASES, PREDICT_CASES
from tests.service.v2.test_rest import MALFORMED

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def figure(row: str) -> int:
    match = re.search(rf"^\| {re.escape(row)} \| ([0-9,]+) \|", DOC.read_text(), re.MULTILINE)
    assert match is not None, f"no row {row!r} in {DOC}"
    return int(match.group(1).replace(",", ""))


def test_malformed_kind_counts_match_the_catalogs() -> None:
    rest = len(PREDICT_CASES) + len(LOSS_CASES)
    assert figure("malformed request kinds, REST (`/predict`, `/loss`)") == rest
    assert figure("malformed request kinds, V2 over HTTP") == len(MALFORMED)
    assert figure("malformed request kinds, gRPC (both services)") == len(MUTATIONS)
    total = rest + len(MALFORMED) + len(MUTATIONS)
    assert figure("malformed request kinds, in all") == total >= 50
