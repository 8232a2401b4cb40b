"""``python -m service.evaluate`` as a user runs it: report files, clear errors, no TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from service.evaluate.cli import main
from service.evaluate.local_engine import LocalEngine
from service.evaluate.runner import evaluate
from tests.service.evaluate.conftest import TEST_ROWS, make_job

REPO = Path(__file__).resolve().parents[3]
PNG = b"\x89PNG\r\n\x1a\n"

RUN_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.argv = ["python -m service.evaluate", *sys.argv[1:]]
try:
    runpy.run_module("service.evaluate", run_name="__main__")
except SystemExit as exit:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print("tensorflow modules:", loaded)
    raise
"""


def test_command_writes_report_and_figures_without_tensorflow(
    repository: Path, cifar_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    args = [
        "--dataset", str(cifar_folder), "--model-repository", str(repository),
        "--loss", "categorical_focal_crossentropy", "--loss-options", '{"gamma": 2.0}',
        "--chunk-size", "200", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TENSORFLOW, *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=os.environ | {"ORT_DISABLE_TELEMETRY": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tensorflow modules: []" in done.stdout
    assert "DATASET: SYNTHETIC" in done.stdout
    assert "images/s" in done.stderr  # the progress bar
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["images"] == TEST_ROWS
    assert report["dataset"]["name"] == "synthetic"
    assert report["loss"]["options"] == {"gamma": 2.0}
    assert len(report["per_class"]) == 10
    assert len(report["reliability"]) == 15
    assert sum(b["images"] for b in report["reliability"]) == TEST_ROWS
    assert np.sum(report["confusion_matrix"]["counts"]) == TEST_ROWS
    assert report["run"]["chunks"] == 4
    for name in ("reliability.png", "confusion.png", "per_class.png"):
        assert (out / name).read_bytes()[:8] == PNG
        assert f"({name})" in (out / "report.md").read_text()
    assert "Synthetic stand-in data, not CIFAR-10" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--loss", "cross_entropy"], "loss: unknown loss 'cross_entropy'"),
        (["--reduction", "none"], "reduction 'none' gives one loss per image"),
        (["--reduction", "average"], "unknown reduction 'average'"),
        (["--loss-options", '{"gamma": -1}'], "loss: "),
        (["--loss-options", '{"nope": 1}'], "nope"),
        (["--chunk-size", "0"], "chunk_size"),
        (["--model", "absent"], "has no model 'absent'"),
        (["--version", "9"], "has no version 9"),
        (["--server", "127.0.0.1:1"], "--model is required with --server"),
        (["--split", "validation"], "split"),
        (["--loss-options", "{bad"], "loss_options"),
        (["--loss-options", '{"reduction": "sum"}'], "'reduction' cannot be a loss option"),
        (["--loss-options", '{"sample_weight": 2}'], "'sample_weight' cannot be a loss option"),
        (
            ["--server", "127.0.0.1:1", "--model", "m", "--tls-ca-file", "/absent.pem"],
            "/absent.pem: cannot be read",
        ),
    ],
)
def test_bad_settings_exit_2_naming_the_problem(
    extra: list[str], message: str, repository: Path, cifar_folder: Path, tmp_path: Path, capsys
) -> None:
    args = ["--dataset", str(cifar_folder), "--model-repository", str(repository)]
    assert main([*args, "--out", str(tmp_path / "r"), "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.json").exists()


def test_labels_outside_the_classes_are_refused(repository: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((4, 32, 32, 3), np.uint8), labels=[1, 2, 12, 3])
    args = ["--dataset", str(path), "--model-repository", str(repository), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    assert "label 12 at row 2 is not a class id in 0..9" in capsys.readouterr().err


def test_damaged_files_are_refused_naming_them(
    repository: Path, cifar_folder: Path, arrays, tmp_path: Path, capsys
) -> None:
    import tarfile

    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_folder, arcname=cifar_folder.name)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    compressed = tmp_path / "damaged.npz"
    np.savez_compressed(compressed, images=arrays[0], labels=arrays[1])
    data = bytearray(compressed.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # inside the images' deflate stream
    compressed.write_bytes(bytes(data))
    common = ["--model-repository", str(repository), "--no-progress", "--no-figures"]
    for path in (truncated, compressed):
        assert main(["--dataset", str(path), *common, "--out", str(tmp_path / "r")]) == 2
        error = capsys.readouterr().err
        assert str(path) in error, error
        assert "Traceback" not in error, error
    assert not (tmp_path / "r" / "report.json").exists()


def test_memory_stays_bounded_by_the_chunk(repository: Path, tmp_path: Path) -> None:
    rows = 20_000  # 61 MB of pixels
    rng = np.random.default_rng(0)
    path = tmp_path / "large.npz"
    np.savez(
        path,
        images=rng.integers(0, 256, (rows, 32, 32, 3), np.uint8),
        labels=rng.integers(0, 10, rows),
    )
    tracemalloc.start()
    try:
        result = evaluate(make_job(repository, path), LocalEngine(2), chunk_size=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.tally.total == rows
    # Two workers × two chunks in flight, each 256 rows (0.8 MB as pixels, 3 MB as float32).
    assert peak < 20e6, f"peak {peak / 1e6:.1f} MB for a 61 MB dataset"


def test_the_docs_list_every_setting() -> None:
    from service.evaluate.settings import EvaluateSettings

    docs = (REPO / "docs" / "evaluation.md").read_text()
    for name in EvaluateSettings.model_fields:
        assert f"| `--{name.replace('_', '-')}`" in docs, name
        assert f"`EVALUATE_{name.upper()}`" in docs, name
