"""The same evaluation by every route: a served model over V2 gRPC, and Ray Data actors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.evaluate.cli import main
from service.evaluate.datasets import DatasetSpec
from service.evaluate.job import EvaluationJob, LossSpec
from service.evaluate.local_engine import LocalEngine
from service.evaluate.models import ServedModel, local_model
from service.evaluate.ray_engine import LOCAL_START_ATTEMPTS
from service.evaluate.runner import evaluate
from service.launcher import RunningService
from tests.service.evaluate.conftest import TEST_ROWS
from tests.service.helpers import MAX_ROWS


def test_served_model_over_v2_grpc_equals_the_file(
    live: RunningService, repository_path: Path, cifar_folder: Path
) -> None:
    loss = LossSpec("sparse_categorical_crossentropy", "sum")
    dataset = DatasetSpec(str(cifar_folder))
    here = EvaluationJob(dataset, local_model(repository_path, "cifar10", 2), loss)
    served = ServedModel(live.grpc_target, "cifar10", 2, request_rows=MAX_ROWS)
    remote = EvaluationJob(dataset, served, loss)
    a = evaluate(here, LocalEngine(1), chunk_size=300)
    b = evaluate(remote, LocalEngine(2), chunk_size=300)
    assert b.tally.total == TEST_ROWS
    np.testing.assert_array_equal(a.tally.confusion, b.tally.confusion)
    np.testing.assert_array_equal(a.tally.bin_rows, b.tally.bin_rows)
    assert b.loss_value == pytest.approx(a.loss_value, rel=1e-6)
    # The protocol's metadata has no class names: the dataset's own are reported.
    assert b.class_names[0] == "synthetic-horizontal-stripes"
    assert b.model == {
        "name": "cifar10", "version": 2, "address": live.grpc_target,
        "calibration_temperature": 1.0, "calibration_note": None,
    }  # fmt: skip


def test_served_model_errors_name_the_server(
    live: RunningService, cifar_folder: Path, capsys
) -> None:
    args = ["--dataset", str(cifar_folder), "--server", live.grpc_target, "--no-progress"]
    assert main([*args, "--model", "absent"]) == 2
    assert f"{live.grpc_target}: NOT_FOUND" in capsys.readouterr().err
    # More rows a request than the server takes: its refusal, not a crash.
    assert main([*args, "--model", "cifar10", "--request-rows", str(MAX_ROWS + 1)]) == 2
    assert "RESOURCE_EXHAUSTED" in capsys.readouterr().err


def test_ray_gives_the_local_report(repository: Path, cifar_folder: Path, tmp_path: Path) -> None:
    common = [
        "--dataset", str(cifar_folder), "--model-repository", str(repository),
        "--loss", "sparse_categorical_crossentropy", "--loss-options", '{"ignore_class": 4}',
        "--chunk-size", "128", "--no-progress", "--no-figures",
    ]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 0
    local = json.loads((tmp_path / "local" / "report.json").read_text())
    ray = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert ray["run"]["engine"] == "ray"
    assert ray["run"]["chunks"] == local["run"]["chunks"] == 6
    for part in (
        "dataset",
        "model",
        "loss",
        "metrics",
        "per_class",
        "confusion_matrix",
        "reliability",
    ):
        assert _rounded(ray[part]) == _rounded(local[part]), part


def test_an_actors_error_reaches_the_user_as_itself(
    repository: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "bad.npz"
    labels = np.zeros(300, np.int64)
    labels[250] = 12
    np.savez(path, images=np.zeros((300, 32, 32, 3), np.uint8), labels=labels)
    args = ["--dataset", str(path), "--model-repository", str(repository), "--engine", "ray"]
    assert (
        main(
            [
                *args,
                "--workers",
                "1",
                "--chunk-size",
                "100",
                "--no-progress",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    # Ray logs the failed task itself; the command's own error line is the actor's message.
    lines = capsys.readouterr().err.splitlines()
    assert f"error: {path}: label 12 at row 250 is not a class id in 0..9" in lines


NODE_TIMEOUT = Exception("The current node timed out during startup.")
"""Ray's own node-registration timeout."""
GCS_TIMEOUT = RuntimeError("Timed out waiting for file /tmp/ray/session_x/gcs_server_port_y")
"""Ray's timeout for its GCS's port file (seen on a loaded CI machine)."""


class _FailingStarts:
    """``ray.init`` whose first ``failures`` calls fail with ``error``."""

    def __init__(self, real: Any, failures: int, error: Exception = NODE_TIMEOUT) -> None:
        self.real, self.failures, self.calls, self.error = real, failures, 0, error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.real(*args, **kwargs)


@pytest.mark.parametrize("error", [NODE_TIMEOUT, GCS_TIMEOUT], ids=["node", "gcs"])
def test_a_local_ray_that_does_not_start_is_started_once_more(
    repository: Path, cifar_folder: Path, tmp_path: Path, monkeypatch, caplog, error: Exception
) -> None:
    import ray

    starts = _FailingStarts(ray.init, failures=1, error=error)
    monkeypatch.setattr(ray, "init", starts)
    args = ["--dataset", str(cifar_folder), "--model-repository", str(repository)]
    out = ["--engine", "ray", "--workers", "1", "--no-progress", "--no-figures"]
    assert main([*args, *out, "--out", str(tmp_path / "r")]) == 0
    assert starts.calls == 2
    assert f"did not start ({error})" in caplog.text
    assert json.loads((tmp_path / "r" / "report.json").read_text())["run"]["engine"] == "ray"


def test_a_bad_argument_to_a_local_ray_is_not_retried(
    repository: Path, cifar_folder: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import ray

    starts = _FailingStarts(ray.init, failures=1, error=ValueError("num_cpus must be positive"))
    monkeypatch.setattr(ray, "init", starts)
    args = ["--dataset", str(cifar_folder), "--model-repository", str(repository)]
    assert main([*args, "--engine", "ray", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    assert starts.calls == 1
    assert "cannot start or join a local Ray: num_cpus must be positive" in capsys.readouterr().err


def test_a_local_ray_that_never_starts_is_a_clear_error(
    repository: Path, cifar_folder: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import ray

    starts = _FailingStarts(ray.init, failures=LOCAL_START_ATTEMPTS)
    monkeypatch.setattr(ray, "init", starts)
    args = ["--dataset", str(cifar_folder), "--model-repository", str(repository)]
    assert main([*args, "--engine", "ray", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    assert starts.calls == LOCAL_START_ATTEMPTS
    error = capsys.readouterr().err
    assert "error: cannot start or join a local Ray (2 tries): The current node timed out" in error
    assert not (tmp_path / "r" / "report.json").exists()


def _rounded(value: Any) -> Any:
    """Floats to 12 significant digits (sums added in another order may differ in the last)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
