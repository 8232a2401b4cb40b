"""``--fit-temperature`` and ``--calibrated``: the fit at dataset scale equals one fit over all
the fit rows, on any chunking and engine; it is reported, stored and applied as served."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from service.calibration import (
    CALIBRATION_FILE,
    Calibration,
    QualitySums,
    fit_temperature,
    read_calibration,
    write_calibration,
)
from service.calibration.file import file_sha256
from service.evaluate.cli import main
from service.evaluate.local_engine import LocalEngine
from service.evaluate.metrics import Tally
from service.evaluate.outputs import RowSplit
from service.evaluate.runner import evaluate
from service.launcher import RunningService
from service.losses import compute_loss
from tests.service.evaluate.conftest import TEST_ROWS, make_job
from tests.service.helpers import MAX_ROWS
from training.data import load_cifar10

QUIET = ["--no-progress", "--no-figures"]


@pytest.fixture
def models(repository: Path, tmp_path: Path) -> Path:
    """A copy of the test repository that this test may write calibration files into."""
    root = tmp_path / "models"
    shutil.copytree(repository, root)
    return root


def _run(models: Path, dataset: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["--dataset", str(dataset), "--model-repository", str(models), "--out", str(out)]
    assert main([*args, *QUIET, *extra]) == 0
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def _calibration(temperature: float, model_sha256: str) -> Calibration:
    return Calibration.model_validate({"temperature": temperature, "model_sha256": model_sha256})


def _one_fit(logits: np.ndarray, labels: np.ndarray, split: RowSplit) -> float:
    """The temperature of one ``fit_temperature`` over every fit row, in one chunk."""
    rows = split.fit_rows(0, len(labels))
    return fit_temperature(lambda: [(logits[rows], labels[rows])]).temperature


@pytest.mark.parametrize("chunk_size", [64, 1000])
def test_the_fit_equals_one_fit_over_all_fit_rows_and_is_stored(
    chunk_size: int, models: Path, cifar_folder: Path, arrays, reference_logits, tmp_path, capsys
) -> None:
    report = _run(
        models, cifar_folder, tmp_path / "r", "--chunk-size", str(chunk_size), "--fit-temperature"
    )
    section = report["calibration"]
    expected = _one_fit(reference_logits, arrays[1], RowSplit(0.5, 0))
    assert section["temperature"] == pytest.approx(expected, rel=1e-6)
    fit_rows = int(RowSplit(0.5, 0).fit_rows(0, TEST_ROWS).sum())
    assert section["fitted_on"]["rows"] == fit_rows
    assert section["measured_on"]["rows"] == section["before"]["rows"] == TEST_ROWS - fit_rows
    assert section["before"]["accuracy"] == section["after"]["accuracy"]
    assert section["same_rows"] is False
    # Stored beside the model: a valid calibration of exactly this model.onnx.
    version = models / "linear" / "1"
    assert section["written_to"] == str(version / CALIBRATION_FILE)
    stored = Calibration.model_validate_json((version / CALIBRATION_FILE).read_text())
    assert stored == read_calibration(version)
    assert stored.model_sha256 == file_sha256(version / "model.onnx")
    assert stored.temperature == section["temperature"]
    assert stored.fitted_on["rows"] == fit_rows
    assert stored.fitted_on["calibration_split"] == 0.5
    assert stored.measured_on is not None
    assert stored.measured_on["rows"] == TEST_ROWS - fit_rows
    assert stored.after is not None
    assert stored.after["nll"] == pytest.approx(section["after"]["nll"])
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("calibration:"))
    assert f"T = {expected:.4f}" in line
    assert f"measured on {TEST_ROWS - fit_rows:,} rows); written to {version}" in line


def test_ray_actors_carry_the_outputs_of_chunks_of_any_size(
    models: Path, cifar_folder: Path, arrays, reference_logits, tmp_path: Path
) -> None:
    common = ["--chunk-size", "64", "--fit-temperature", "--calibration-split", "0.3"]
    common += ["--split-seed", "11", "--no-write-calibration"]
    local = _run(models, cifar_folder, tmp_path / "local", *common)
    ray = _run(models, cifar_folder, tmp_path / "ray", *common, "--engine", "ray", "--workers", "2")
    assert ray["run"]["engine"] == "ray"
    assert ray["run"]["chunks"] == 11  # ten of 64 rows and one of 60
    expected = _one_fit(reference_logits, arrays[1], RowSplit(0.3, 11))
    assert ray["calibration"]["temperature"] == pytest.approx(expected, rel=1e-6)
    for when in ("before", "after"):
        for name, value in local["calibration"][when].items():
            assert ray["calibration"][when][name] == pytest.approx(value, rel=1e-9), (when, name)
    assert ray["calibration"]["written_to"] is None
    assert not (models / "linear" / "1" / CALIBRATION_FILE).exists()


def test_the_split_does_not_depend_on_chunks_or_workers(
    repository: Path, cifar_folder: Path, reference_logits
) -> None:
    import dataclasses

    split = RowSplit(0.5, 3)
    job = dataclasses.replace(
        make_job(repository, cifar_folder), keep_outputs=True, calibration_split=split
    )
    masks = []
    for chunk_size, workers in [(7, 2), (1000, 1), (128, 3)]:
        result = evaluate(job, LocalEngine(workers), chunk_size=chunk_size)
        assert [o.start for o in result.outputs] == list(range(0, TEST_ROWS, chunk_size))
        np.testing.assert_allclose(
            np.concatenate([o.logits for o in result.outputs]), reference_logits, rtol=1e-5,
            atol=1e-5,
        )  # fmt: skip
        masks.append(np.concatenate([o.fit_rows(split) for o in result.outputs]))
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    np.testing.assert_array_equal(masks[0], split.fit_rows(0, TEST_ROWS))
    np.testing.assert_array_equal(split.fit_rows(100, 200), masks[0][100:200])
    assert not np.array_equal(RowSplit(0.5, 4).fit_rows(0, TEST_ROWS), masks[0])


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_the_split_puts_the_asked_fraction_of_rows_on_the_fit_side(fraction: float) -> None:
    rows = 200_000
    share = RowSplit(fraction, 7).fit_rows(0, rows).mean()
    assert share == pytest.approx(fraction, abs=4 * np.sqrt(fraction * (1 - fraction) / rows))
    assert RowSplit(1.0, 7).fit_rows(5, 9).all()


def test_fitted_and_measured_on_the_same_rows_is_said_in_bold(
    models: Path, cifar_folder: Path, tmp_path: Path, capsys
) -> None:
    args = ["--fit-temperature", "--calibration-split", "1", "--no-write-calibration"]
    report = _run(models, cifar_folder, tmp_path / "r", *args)
    section = report["calibration"]
    assert section["same_rows"] is True
    assert section["fitted_on"]["rows"] == section["measured_on"]["rows"] == TEST_ROWS
    assert section["not_written"] == "--no-write-calibration"
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "**Fitted and measured on the same rows: optimistic.**" in markdown
    assert "the fitted rows: optimistic" in capsys.readouterr().out


def test_report_json_calibration_shape(models: Path, cifar_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--dataset", str(cifar_folder), "--model-repository", str(models), "--out", str(out)]
    assert main([*args, "--no-progress", "--fit-temperature"]) == 0
    section = json.loads((out / "report.json").read_text())["calibration"]
    assert set(section) == {
        "method", "temperature", "iterations", "converged", "at_bound", "fitted_on",
        "measured_on", "same_rows", "before", "after", "reliability", "written_to",
        "not_written",
    }  # fmt: skip
    assert set(section["before"]) == {
        "temperature", "rows", "nll", "ece", "brier", "accuracy", "mean_confidence",
    }  # fmt: skip
    assert len(section["reliability"]["before"]) == len(section["reliability"]["after"]) == 15
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert "## Calibration (temperature scaling)" in markdown
    assert "| before | 1 |" in markdown
    assert "(calibration.png)" in markdown


def _write_trained_model(path: Path, cifar_folder: Path) -> None:
    """A nearest-class-mean classifier of the training split's pixels: ~90% right on the test
    split and overconfident (mean confidence ~98%), as trained classifiers often are."""
    from tests.service.helpers import CLASSES
    from tests.service.onnx_models import write_linear_model

    data = load_cifar10(cifar_folder)
    x = data.x_train.reshape(len(data.x_train), -1) / 255.0
    means = np.stack([x[data.y_train == c].mean(axis=0) for c in range(10)])
    write_linear_model(path, class_names=CLASSES)
    model = onnx.load(str(path))
    values = {"weights": means.T, "bias": -0.5 * (means**2).sum(axis=1)}
    for tensor in model.graph.initializer:
        if tensor.name in values:
            tensor.CopyFrom(
                numpy_helper.from_array(values[tensor.name].astype(np.float32), tensor.name)
            )
    onnx.save(model, str(path))


def test_a_trained_overconfident_model_gets_better_calibrated_on_the_measure_rows(
    cifar_folder: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    _write_trained_model(models / "linear" / "1" / "model.onnx", cifar_folder)
    report = _run(models, cifar_folder, tmp_path / "r", "--fit-temperature")
    section = report["calibration"]
    before, after = section["before"], section["after"]
    assert report["metrics"]["accuracy"] > 0.8
    assert section["temperature"] > 1  # overconfident: softened
    assert after["nll"] <= before["nll"]
    assert after["ece"] <= before["ece"]
    assert after["accuracy"] == before["accuracy"]
    # The evaluation's own ECE (all rows, T = 1) is the report's; the file is served next time.
    assert read_calibration(models / "linear" / "1") is not None


def test_calibrated_scores_the_version_as_served(
    models: Path, cifar_folder: Path, arrays, reference_logits, tmp_path: Path
) -> None:
    version = models / "linear" / "1"
    sha256 = file_sha256(version / "model.onnx")
    write_calibration(version, _calibration(2.5, sha256))
    labels = arrays[1]
    served = _run(models, cifar_folder, tmp_path / "served", "--chunk-size", "200")
    raw = _run(models, cifar_folder, tmp_path / "raw", "--no-calibrated")
    scaled = compute_loss(
        "sparse_categorical_crossentropy", labels, logits=reference_logits / np.float32(2.5)
    )
    assert served["loss"]["value"] == pytest.approx(float(scaled.value), rel=1e-6)
    assert served["metrics"]["ece"] == pytest.approx(
        Tally.of(reference_logits, labels, temperature=2.5).ece(), abs=1e-6
    )
    assert served["model"]["calibration_temperature"] == 2.5
    assert str(version / CALIBRATION_FILE) in served["model"]["calibration_note"]
    unscaled = compute_loss("sparse_categorical_crossentropy", labels, logits=reference_logits)
    assert raw["loss"]["value"] == pytest.approx(float(unscaled.value), rel=1e-6)
    assert raw["model"]["calibration_temperature"] == 1.0
    assert "not applied (--no-calibrated)" in raw["model"]["calibration_note"]
    # A fit beside a served calibration starts from the raw logits all the same.
    refit = _run(models, cifar_folder, tmp_path / "refit", "--fit-temperature")
    split = RowSplit(0.5, 0)
    measure = ~split.fit_rows(0, TEST_ROWS)
    raw_nll = QualitySums.of(reference_logits[measure], labels[measure]).quality().nll
    assert refit["calibration"]["before"]["nll"] == pytest.approx(raw_nll, rel=1e-6)
    assert refit["calibration"]["temperature"] == pytest.approx(
        _one_fit(reference_logits, labels, split), rel=1e-6
    )
    assert read_calibration(version).temperature == refit["calibration"]["temperature"]


def test_a_calibration_of_another_model_file_is_not_applied(
    models: Path, cifar_folder: Path, tmp_path: Path
) -> None:
    version = models / "linear" / "1"
    other = hashlib.sha256(b"another model").hexdigest()
    write_calibration(version, _calibration(2.5, other))
    report = _run(models, cifar_folder, tmp_path / "r")
    assert report["model"]["calibration_temperature"] == 1.0
    assert "fitted for another model.onnx" in report["model"]["calibration_note"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "calibration.json: "),
        ('{"format": 1, "temperature": -1}', "calibration.json: temperature: "),
        ('{"format": 1, "temperature": 2, "surprise": 1}', "calibration.json: surprise: "),
    ],
)
def test_a_malformed_calibration_file_is_a_clear_error(
    text: str, message: str, models: Path, cifar_folder: Path, tmp_path: Path, capsys
) -> None:
    (models / "linear" / "1" / CALIBRATION_FILE).write_text(text)
    args = ["--dataset", str(cifar_folder), "--model-repository", str(models)]
    out = ["--out", str(tmp_path / "r"), "--fit-temperature", *QUIET]
    assert main([*args, *out]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: "), error
    assert error.count("\n") == 1, error
    assert message in error
    assert "--no-calibrated" in error
    assert not (tmp_path / "r" / "report.json").exists()
    # Without reading it, the raw logits are evaluated (and a new fit replaces it).
    assert main([*args, *out, "--no-calibrated"]) == 0
    assert read_calibration(models / "linear" / "1") is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--loss-input", "sigmoid"], "sigmoid (multi-label) scores get no fit"),
        (["--calibration-split", "0"], "calibration_split"),
        (["--calibration-split", "1.5"], "calibration_split"),
        (["--calibration-split", "0.001"], "leaves 0 row(s) to fit the temperature on"),
        (["--split-seed", "-1"], "split_seed"),
    ],
)
def test_fit_settings_that_cannot_work_exit_2(
    extra: list[str], message: str, models: Path, cifar_folder: Path, tmp_path: Path, capsys
) -> None:
    args = ["--dataset", str(cifar_folder), "--model-repository", str(models), "--limit", "50"]
    assert main([*args, "--out", str(tmp_path / "r"), *QUIET, "--fit-temperature", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (models / "linear" / "1" / CALIBRATION_FILE).exists()


def test_a_served_model_is_fitted_but_nothing_is_written(
    live: RunningService, repository_path: Path, cifar_folder: Path, tmp_path: Path, capsys
) -> None:
    args = ["--dataset", str(cifar_folder), "--server", live.grpc_target, "--model", "cifar10"]
    args += ["--version", "2", "--request-rows", str(MAX_ROWS), "--fit-temperature"]
    args += ["--out", str(tmp_path / "r"), *QUIET]
    assert main(args) == 0
    section = json.loads((tmp_path / "r" / "report.json").read_text())["calibration"]
    assert section["written_to"] is None
    assert section["not_written"] == "--server: the server's repository is not here"
    assert "not written (--server" in capsys.readouterr().out
    assert not list(repository_path.rglob(CALIBRATION_FILE))
