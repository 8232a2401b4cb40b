"""``python -m service.promotion``: a worse candidate is refused and the label stays; a better
one takes the label, and the running service follows at once; each version is judged as the
service serves it (its own calibration applied)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.calibration import Calibration, fit_temperature, write_calibration
from service.calibration.file import file_sha256
from service.promotion.cli import main
from tests.service.helpers import InProcessService
from tests.service.onnx_models import LinearModel, fit_linear_model, write_linear_model
from training.data import load_cifar10
from training.synthetic import EASY, write_synthetic_cifar10

Data = tuple[Path, LinearModel, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """A synthetic CIFAR-format set, a linear model fitted on 600 of its training rows (about
    80 % right on the test rows), and the other 400 training rows (held out: to calibrate on)."""
    folder = write_synthetic_cifar10(
        tmp_path_factory.mktemp("cifar"), difficulty=EASY, train_per_batch=200, test_size=700,
        seed=4,
    )  # fmt: skip
    loaded = load_cifar10(folder)
    images, labels = loaded.x_train, loaded.y_train.ravel()
    trained = fit_linear_model(images[:600], labels[:600], scale=3.0)
    return folder, trained, images[600:], labels[600:]


def _damaged(model: LinearModel) -> LinearModel:
    """The same model with its classes shuffled: confident and mostly wrong."""
    order = np.roll(np.arange(model.bias.size), 3)
    return LinearModel(model.weights[:, order], model.bias[order])


def _repository(root: Path, versions: dict[int, LinearModel], labels: dict[str, int]) -> Path:
    for version, model in versions.items():
        write_linear_model(root / "m" / str(version) / "model.onnx", trained=model)
    settings = {"labels": labels, "max_batch_size": 16}
    (root / "m" / "config.json").write_text(json.dumps(settings))
    return root


def _promote(repository: Path, folder: Path, out: Path, *extra: str) -> int:
    args = ["--model-repository", str(repository), "--dataset", str(folder), "--out", str(out)]
    return main([*args, "--no-figures", *extra])


def test_a_worse_candidate_is_refused_and_the_label_stays(
    data: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, good, _x, _y = data
    repository = _repository(tmp_path / "r", {1: good, 2: _damaged(good)}, {"stable": 1})
    config = (repository / "m" / "config.json").read_bytes()
    out = tmp_path / "out"
    assert _promote(repository, folder, out, "--candidate", "2", "--figures") == 1
    assert (repository / "m" / "config.json").read_bytes() == config
    assert "REFUSED" in capsys.readouterr().out
    record = json.loads((out / "promotion.json").read_text())
    assert (record["promote"], record["label_moved"]) == (False, False)
    assert record["incumbent"]["version"] == 1
    assert record["candidate"]["served"]["accuracy"] < record["incumbent"]["served"]["accuracy"]
    assert any(f.startswith("WORSE: accuracy") for f in record["findings"])
    assert "REFUSED" in (out / "promotion.md").read_text()
    assert (out / "promotion.png").stat().st_size > 10_000


def test_a_better_candidate_is_promoted_and_the_running_service_follows_at_once(
    data: Data, tmp_path: Path
) -> None:
    folder, good, _x, _y = data
    repository = _repository(tmp_path / "r", {1: good, 2: _damaged(good)}, {"stable": 2})
    # A poll interval far beyond the test: only the --server notice can move the label now.
    with InProcessService(repository, poll_interval_seconds=600) as service:
        labels = httpx.get(f"{service.url}/models").json()["models"][0]["labels"]
        assert labels == {"stable": "2"}
        out = tmp_path / "out"
        assert _promote(repository, folder, out, "--candidate", "1", "--server", service.url) == 0
        labels = httpx.get(f"{service.url}/models").json()["models"][0]["labels"]
        assert labels == {"stable": "1"}
        answer = httpx.post(
            f"{service.url}/predict",
            json={"instances": np.zeros((1, 32, 32, 3), int).tolist(), "version": "stable"},
        )
        assert answer.json()["model"]["version"] == "1"
    settings = json.loads((repository / "m" / "config.json").read_text())
    assert settings == {"labels": {"stable": 1}, "max_batch_size": 16}  # the rest is kept
    assert json.loads((out / "promotion.json").read_text())["label_moved"] is True


def test_each_version_is_judged_with_its_own_calibration(data: Data, tmp_path: Path) -> None:
    folder, good, held_out, held_out_labels = data
    # The same predictions, ten times over-confident: raw, its NLL is far worse.
    sharp = LinearModel(good.weights * 10, good.bias * 10)
    repository = _repository(tmp_path / "r", {1: good, 2: sharp}, {"stable": 1})
    out = tmp_path / "out"
    assert _promote(repository, folder, out, "--candidate", "2", "--dry-run") == 1
    # Calibrated on held-out training rows (not the rows the promotion measures on).
    logits = sharp.logits(held_out)
    fit = fit_temperature(lambda: [(logits, held_out_labels)])
    assert not fit.at_bound
    version = repository / "m" / "2"
    sha = file_sha256(version / "model.onnx")
    write_calibration(version, Calibration(temperature=fit.temperature, model_sha256=sha))
    assert _promote(repository, folder, out, "--candidate", "2", "--dry-run") == 0
    record = json.loads((out / "promotion.json").read_text())
    candidate, incumbent = record["candidate"], record["incumbent"]
    assert candidate["temperature"] == pytest.approx(fit.temperature)
    assert candidate["raw"]["nll"] > incumbent["served"]["nll"] > candidate["served"]["nll"]
    assert candidate["served"]["accuracy"] == incumbent["served"]["accuracy"]
    assert record["label_moved"] is False  # a dry run
    assert json.loads((version.parent / "config.json").read_text())["labels"] == {"stable": 1}


def test_what_cannot_be_promoted_is_a_clear_error(
    data: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, good, _x, _y = data
    repository = _repository(tmp_path / "r", {1: good}, {"stable": 1})
    out = tmp_path / "out"
    assert _promote(repository, folder, out, "--candidate", "1") == 0  # already there
    assert "already names version 1" in capsys.readouterr().out
    assert _promote(repository, folder, out, "--candidate", "5") == 2
    assert "has no version 5" in capsys.readouterr().err
    assert _promote(repository, folder, out, "--candidate", "1", "--label", "9x") == 2
    assert "must start with a letter" in capsys.readouterr().err
    (repository / "m" / "config.json").write_text("{broken")
    assert _promote(repository, folder, out, "--candidate", "1", "--label", "canary") == 2
    assert "config.json" in capsys.readouterr().err
