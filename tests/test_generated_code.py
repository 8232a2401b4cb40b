"""The committed gRPC code is what scripts/generate_proto.py makes from proto/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_generated_code_is_current() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/generate_proto.py", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _generate(out: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/generate_proto.py", "--out", str(out)],
        cwd=REPO, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def test_stale_code_is_detected(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import generate_proto
    finally:
        sys.path.pop(0)
    fresh, edited = tmp_path / "fresh", tmp_path / "edited"
    _generate(fresh)
    _generate(edited)
    (edited / "inference" / "grpc_predict_v2_pb2.py").write_text("# changed\n")
    (edited / "extra.py").write_text("")
    assert generate_proto.differences(fresh, fresh) == []
    assert generate_proto.differences(fresh, edited) == [
        "extra.py",
        "inference/grpc_predict_v2_pb2.py",
    ]
