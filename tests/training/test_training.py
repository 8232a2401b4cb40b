"""Training, export and the compare experiment, end to end on small synthetic data."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from service.activations import normalized_logits as numpy_normalized_logits
from service.losses import compute_loss
from tests.numerics.keras_reference import tf
from training.compare import compare
from training.export import ExportError, export_run
from training.model import ModelConfig, build_core
from training.objectives import normalized_logits, objective_for
from training.quickstart import quickstart_model
from training.synthetic import EASY, write_synthetic_cifar10
from training.train import PARITY_IMAGES, TrainConfig, announce_dataset, load_dataset, train

REPO = Path(__file__).resolve().parents[2]
TINY = ModelConfig(width=0.25)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The easy preset (the original generator): a tiny model learns it in three epochs."""
    return write_synthetic_cifar10(
        tmp_path_factory.mktemp("data"),
        difficulty=EASY,
        train_per_batch=400,
        test_size=1000,
        seed=0,
    )


@pytest.fixture(scope="module")
def run(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("runs") / "small"
    config = TrainConfig(data=str(synthetic), epochs=3, batch_size=64, model=TINY)
    return out, train(config, out, verbose=0)


def test_short_synthetic_training_learns(run: tuple[Path, dict[str, Any]]) -> None:
    _, summary = run
    assert summary["dataset"] == "synthetic"
    assert summary["best_val_accuracy"] >= 0.90


def test_the_run_records_the_synthetic_difficulty(run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = run
    record = json.loads((out / "config.json").read_text())
    assert record["dataset"] == "synthetic"
    for parameters in (record["dataset_parameters"], summary["dataset_parameters"]):
        assert {k: parameters[k] for k in ("overlap", "noise", "clutter", "label_noise")} == {
            "overlap": 0.0,
            "noise": 20.0,
            "clutter": 0,
            "label_noise": 0.0,
        }
        assert parameters["generator"] == "training.synthetic"


def test_run_folder_holds_history_curves_and_best_weights(run: tuple[Path, dict[str, Any]]) -> None:
    out, summary = run
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_accuracy"]) == 3
    assert {"accuracy", "top5", "val_accuracy", "val_top5", "loss"} <= set(history)
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch")
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "best.weights.h5").stat().st_size > 0
    assert np.load(out / "parity_images.npy").shape == (PARITY_IMAGES, 32, 32, 3)
    assert summary["best_val_accuracy"] == max(history["val_accuracy"])


def test_evaluating_the_export_gives_keras_validation_figures(
    run: tuple[Path, dict[str, Any]], synthetic: Path, tmp_path: Path
) -> None:
    """python -m service.evaluate (onnxruntime, no TensorFlow) on the validation set equals
    what Keras reported for the exported (best) epoch."""
    from service.evaluate.datasets import DatasetSpec
    from service.evaluate.job import EvaluationJob, LossSpec
    from service.evaluate.local_engine import LocalEngine
    from service.evaluate.models import local_model
    from service.evaluate.runner import evaluate

    out, summary = run
    export_run(out, tmp_path / "models", "cifar10")
    history = json.loads((out / "history.json").read_text())
    best = summary["best_epoch"] - 1
    job = EvaluationJob(
        DatasetSpec(str(synthetic)), local_model(tmp_path / "models", None, None), LossSpec()
    )
    result = evaluate(job, LocalEngine(2), chunk_size=300)
    assert result.tally.total == 1000
    assert result.loss_value == pytest.approx(history["val_loss"][best], rel=1e-4)
    assert result.tally.accuracy() == pytest.approx(history["val_accuracy"][best], abs=1e-3)
    assert result.tally.top_k_accuracy() == pytest.approx(history["val_top5"][best], abs=1e-3)


def test_export_parity_and_metadata(run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, summary = run
    path, difference = export_run(out, tmp_path / "models", "cifar10")
    assert path == tmp_path / "models" / "cifar10" / "1" / "model.onnx"
    assert difference <= 1e-4

    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"])[0] == "synthetic-horizontal-stripes"
    assert meta["dataset"] == "synthetic"
    assert meta["input_layout"] == "NHWC"
    assert meta["input_pixel_range"] == "0-255"
    assert float(meta["val_accuracy"]) == pytest.approx(summary["best_val_accuracy"], abs=1e-6)
    assert json.loads(meta["training_config"])["model"]["width"] == TINY.width
    assert meta["git_revision"]

    second, _ = export_run(out, tmp_path / "models", "cifar10")
    assert second.parent.name == "2"


def test_export_is_readable_by_any_user_whatever_the_umask(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A server running as another user (the container's) can read what export writes."""
    out, _ = run
    previous = os.umask(0o077)
    try:
        path, _ = export_run(out, tmp_path / "models", "cifar10")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for folder in (tmp_path / "models", path.parent.parent, path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no staging file left


def test_exported_model_serves_without_tensorflow(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """onnxruntime alone loads the model, reads its metadata, and reproduces Keras's logits."""
    out, _ = run
    path, _ = export_run(out, tmp_path / "models", "cifar10")
    images = np.load(out / "parity_images.npy")[:8].astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, json, numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(path)!r})\n"
        "i, o = s.get_inputs()[0], s.get_outputs()[0]\n"
        f"x = np.load({str(tmp_path / 'images.npy')!r})\n"
        f"np.save({str(tmp_path / 'logits.npy')!r}, s.run([o.name], {{i.name: x}})[0])\n"
        "meta = s.get_modelmeta().custom_metadata_map\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(json.dumps([i.name, i.shape, o.name, o.shape, meta['dataset']]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == [
        "images",
        ["batch", 32, 32, 3],
        "logits",
        ["batch", 10],
        "synthetic",
    ]
    core = build_core(
        ModelConfig(**json.loads((out / "config.json").read_text())["train"]["model"])
    )
    from training.model import build_training_model

    build_training_model(core).load_weights(out / "best.weights.h5")
    expected = core(images, training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-4)


def test_failed_parity_writes_nothing(run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = run
    with pytest.raises(ExportError, match=r"max \|Δlogit\| = .* exceeds -1"):
        export_run(out, tmp_path / "models", "cifar10", tolerance=-1.0)
    assert not (tmp_path / "models" / "cifar10" / "1" / "model.onnx").exists()


def test_export_of_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is not a finished training run"):
        export_run(tmp_path, tmp_path / "models")


def test_quickstart_model_keeps_an_existing_model(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = run
    export_run(out, tmp_path / "models", "cifar10")
    assert quickstart_model(tmp_path / "models", "cifar10", out=tmp_path / "unused") is None
    assert not (tmp_path / "unused").exists()


def test_quickstart_model_exports_a_given_run_once(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The compose job's path: a given run is exported as version 1, and only when the
    repository has no model yet."""
    out, _ = run
    repository = tmp_path / "models"
    path = quickstart_model(repository, "cifar10", out=tmp_path / "unused", run=out)
    assert path == repository / "cifar10" / "1" / "model.onnx"
    assert quickstart_model(repository, "cifar10", out=tmp_path / "unused", run=out) is None
    assert sorted(p.name for p in (repository / "cifar10").iterdir()) == ["1"]
    assert not (tmp_path / "unused").exists()


def test_compare_writes_figure_and_table(synthetic: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        data=str(synthetic),
        epochs=1,
        batch_size=64,
        max_samples=256,
        max_val_samples=256,
        model=TINY,
    )
    summaries = compare(["softmax", "normalized_logits"], config, tmp_path)
    assert set(summaries) == {"softmax", "normalized_logits"}
    png = (tmp_path / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000  # two panels with axes, legends and curves, not an empty canvas
    table = (tmp_path / "comparison.md").read_text()
    assert "| softmax |" in table
    assert "| normalized_logits |" in table
    assert "Dataset: **synthetic** (overlap=0, noise=20, clutter=0, label_noise=0)" in table


def test_cli_trains_and_exports(synthetic: Path, tmp_path: Path) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "training", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env | {"PYTHONPATH": str(REPO)},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    train_out = cli(
        "train",
        "--data",
        str(synthetic),
        "--epochs",
        "1",
        "--max-samples",
        "128",
        "--max-val-samples",
        "128",
        "--width",
        "0.125",
        "--out",
        "runs/smoke",
    )
    assert "DATASET: SYNTHETIC" in train_out
    export_out = cli("export", "--run", "runs/smoke", "--repository", "models")
    assert "parity max |Δlogit|" in export_out
    assert (tmp_path / "models" / "cifar10" / "1" / "model.onnx").is_file()


def test_cli_reports_missing_data(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "training", "train", "--data", str(tmp_path), "--out", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert done.returncode == 2
    assert "no CIFAR-10 archive or folder here" in done.stderr
    assert "Traceback" not in done.stderr


def test_digits_runs_and_models_are_labelled_sklearn_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the digits are written under ./data/
    config = TrainConfig(
        data="digits", epochs=1, batch_size=64, max_samples=128, max_val_samples=64, model=TINY
    )
    summary = train(config, tmp_path / "run", verbose=0)
    assert "DATASET: scikit-learn's handwritten DIGITS" in capsys.readouterr().out
    assert (tmp_path / "data" / "digits" / "cifar-10-batches-py" / "batches.meta").is_file()
    assert summary["dataset"] == "sklearn-digits"
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["dataset"] == "sklearn-digits"
    assert record["class_names"] == [str(d) for d in range(10)]
    assert record["dataset_parameters"]["test_fraction"] == 0.2
    path, _ = export_run(tmp_path / "run", tmp_path / "models", "digits")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["dataset"] == "sklearn-digits"
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)]


def test_load_dataset_resolves_specs_under_its_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = load_dataset("synthetic:easy,label_noise=0.5", root=tmp_path)
    assert dataset.name == "synthetic"
    assert dataset.source.parent.parent == tmp_path / "synthetic"
    assert dataset.parameters["label_noise"] == 0.5
    announce_dataset(dataset)
    banner = capsys.readouterr().out
    assert "DATASET: SYNTHETIC" in banner
    assert "Difficulty: overlap=0, noise=20, clutter=0, label_noise=0.5." in banner


def test_normalized_logits_objective_matches_the_service_baseline() -> None:
    logits = np.random.default_rng(0).normal(0, 3, (16, 10)).astype(np.float32)
    logits[0] = 1.0  # constant row: uniform in both
    np.testing.assert_allclose(
        normalized_logits(tf.constant(logits)).numpy(), numpy_normalized_logits(logits), atol=1e-6
    )


def test_sigmoid_objective_is_binary_crossentropy_of_one_hot_labels() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (16, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    ours = objective_for("sigmoid")(labels, logits).numpy()
    expected = compute_loss("binary_crossentropy", np.eye(10)[labels], logits=logits).value
    assert float(ours) == pytest.approx(expected, rel=1e-6)


def test_unknown_top_activation() -> None:
    with pytest.raises(ValueError, match="unknown top activation"):
        objective_for("relu")
