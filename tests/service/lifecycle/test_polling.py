"""Poll mode: a version exported into the served repository is served without a restart, a
label move takes effect at once through the load API, and a half-written or corrupt file never
replaces the version that serves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.service.helpers import InProcessService, metric
from tests.service.lifecycle.helpers import publish, states, wait_for
from tests.service.onnx_models import LinearModel, write_linear_model

IMAGES = np.random.default_rng(7).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)


Polled = tuple[InProcessService, dict[int, LinearModel]]
SLOW_POLL = 0.5
"""A poll interval far longer than a step of :func:`_copy_slowly` (with its checks)."""


def _polled(root: Path, interval: float) -> Iterator[Polled]:
    references = {1: publish(root, "m", 1, seed=1)}
    with InProcessService(root, poll_interval_seconds=interval) as service:
        yield service, references


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[Polled]:
    yield from _polled(tmp_path, 0.1)


@pytest.fixture
def slowly_polled(tmp_path: Path) -> Iterator[Polled]:
    yield from _polled(tmp_path, SLOW_POLL)


def _predict(http: httpx.Client, version: str | None = None) -> tuple[str, np.ndarray]:
    body: dict[str, object] = {"instances": IMAGES.tolist()}
    if version is not None:
        body["version"] = version
    answer = http.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    return data["model"]["version"], np.array(data["logits"], dtype=np.float32)


def test_an_exported_version_is_served_without_a_restart(
    polled: Polled,
) -> None:
    service, references = polled
    root = service.settings.model_repository
    with httpx.Client(base_url=service.url, timeout=30) as http:
        assert _predict(http)[0] == "1"
        references[2] = publish(root, "m", 2, seed=2)
        wait_for(lambda: _predict(http)[0] == "2", what="version 2 answers")
        _version, logits = _predict(http)
        np.testing.assert_allclose(logits, references[2].logits(IMAGES), rtol=1e-5, atol=1e-5)
        # The default policy serves the latest version only: 1 drains and is unloaded.
        wait_for(lambda: states(service.url) == {"2": "READY"}, what="version 1 unloaded")
        assert http.get("/v2/models/m").json()["versions"] == ["2"]
        assert http.get("/v2/health/ready").status_code == 200


def test_a_label_move_takes_effect_at_once(
    polled: Polled,
) -> None:
    service, references = polled
    root = service.settings.model_repository
    config = root / "m" / "config.json"
    with httpx.Client(base_url=service.url, timeout=30) as http:
        config.write_text(json.dumps({"labels": {"stable": 1, "canary": 2}}))
        references[2] = publish(root, "m", 2, seed=2)
        wait_for(lambda: states(service.url) == {"1": "READY", "2": "READY"}, what="both served")
        assert _predict(http, "stable")[0] == "1"
        assert _predict(http, "canary")[0] == "2"
        assert _predict(http)[0] == "2"  # latest
        listed = http.get("/models").json()["models"][0]
        assert listed["labels"] == {"stable": "1", "canary": "2"}
        # Roll back: latest is version 2, but stable moves there and back by config alone.
        config.write_text(json.dumps({"labels": {"stable": 2}}))
        assert http.post("/v2/repository/models/m/load").status_code == 200
        assert _predict(http, "stable")[0] == "2"  # at once: no polling interval waited
        _version, logits = _predict(http, "stable")
        np.testing.assert_allclose(logits, references[2].logits(IMAGES), rtol=1e-5, atol=1e-5)
        answer = http.post("/predict", json={"instances": IMAGES.tolist(), "version": "canary"})
        assert answer.status_code == 404
        assert "no label 'canary'" in answer.json()["error"]["message"]
        wait_for(lambda: states(service.url) == {"2": "READY"}, what="version 1 unloaded")


def test_a_half_written_or_corrupt_file_never_replaces_the_serving_version(
    tmp_path: Path,
) -> None:
    references = {1: publish(tmp_path, "m", 1, seed=1)}
    service = InProcessService(tmp_path, poll_interval_seconds=0.4).start()
    try:
        _half_written(service, references)
    finally:
        service.stop()


def _half_written(service: InProcessService, references: dict[int, LinearModel]) -> None:
    root = service.settings.model_repository
    good = (root / "m" / "1" / "model.onnx").read_bytes()
    target = root / "m" / "3" / "model.onnx"
    target.parent.mkdir()
    failures = metric(service.url, "service_model_load_failures_total", model="m")
    with httpx.Client(base_url=service.url, timeout=30) as http, target.open("wb") as partial:
        # Copied slowly, in place (not staged and renamed): it changes between any two looks.
        step = len(good) // 40
        for offset in range(0, len(good) // 2, step):
            partial.write(good[offset : offset + step])
            partial.flush()
            assert states(service.url) == {"1": "READY"}
            assert _predict(http)[0] == "1"
            time.sleep(0.05)
        # Then left half-written: once it holds still it is tried, fails, and 1 keeps serving.
        wait_for(lambda: states(service.url).get("3") == "UNAVAILABLE", what="3 failed")
        index = {e["version"]: e for e in http.post("/v2/repository/index").json()}
        assert "onnxruntime cannot load it" in index["3"]["reason"]
        assert index["1"]["state"] == "READY"
        np.testing.assert_allclose(
            _predict(http)[1], references[1].logits(IMAGES), rtol=1e-5, atol=1e-5
        )
        assert http.get("/v2/health/ready").status_code == 200
        after = metric(service.url, "service_model_load_failures_total", model="m")
        assert after == failures + 1  # tried once, not at every look
        assert (
            metric(
                service.url, "service_model_version_state", model="m", version="3", state="FAILED"
            )
            == 1
        )
        # Completed, it loads and takes over.
        partial.seek(0)
        partial.write(good)
        partial.flush()
    wait_for(lambda: states(service.url) == {"3": "READY"}, what="3")


def _copy_slowly(scratch: Path, seed: int, target: Path, during: Callable[[], None]) -> LinearModel:
    """Write a model made in ``scratch`` over ``target`` in place (same file, not staged and
    renamed), in 20 steps well within :data:`SLOW_POLL` of each other, calling ``during``
    after each; the model's reference."""
    reference = write_linear_model(scratch / "model.onnx", seed=seed)
    data = (scratch / "model.onnx").read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    step = len(data) // 20 + 1
    with target.open("wb") as copy:
        for offset in range(0, len(data), step):
            copy.write(data[offset : offset + step])
            copy.flush()
            during()
            time.sleep(0.05)
    return reference


def test_a_serving_version_rewritten_in_place_serves_until_the_new_file_holds_still(
    slowly_polled: Polled,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    service, references = slowly_polled
    target = service.settings.model_repository / "m" / "1" / "model.onnx"
    with httpx.Client(base_url=service.url, timeout=30) as http:

        def still_version_1() -> None:
            assert states(service.url) == {"1": "READY"}
            np.testing.assert_allclose(
                _predict(http)[1], references[1].logits(IMAGES), rtol=1e-5, atol=1e-5
            )

        # While the file changes at every look it is not complete: the loaded one serves.
        replacement = _copy_slowly(tmp_path_factory.mktemp("next"), 5, target, still_version_1)

        def replaced() -> bool:
            logits = _predict(http)[1]
            return bool(np.allclose(logits, replacement.logits(IMAGES), rtol=1e-5, atol=1e-5))

        wait_for(replaced, what="the rewritten file serves as version 1")
        assert states(service.url) == {"1": "READY"}
    assert metric(service.url, "service_model_load_failures_total", model="m") == 0


def test_a_new_model_copied_in_place_is_loaded_once_complete_never_half(
    slowly_polled: Polled,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    service, _references = slowly_polled
    target = service.settings.model_repository / "n" / "1" / "model.onnx"
    with httpx.Client(base_url=service.url, timeout=30) as http:

        def not_tried() -> None:
            failures = metric(service.url, "service_model_load_failures_total", model="n")
            assert failures == 0, "a half-copied file of a new model was loaded"

        reference = _copy_slowly(tmp_path_factory.mktemp("new"), 6, target, not_tried)

        def served() -> bool:
            answer = http.post("/predict", json={"instances": IMAGES.tolist(), "model": "n"})
            return answer.status_code == 200 and bool(
                np.allclose(answer.json()["logits"], reference.logits(IMAGES), atol=1e-5)
            )

        wait_for(served, what="model n served once its file is complete")
    not_tried()
