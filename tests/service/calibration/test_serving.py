"""A version's calibration.json is served: written while the service runs, it applies without a
reload and without a failed request; every transport says what it applied; a bad file leaves
the version serving uncalibrated, with the reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http

from service._generated.cifar10.v1 import classifier_pb2 as pb
from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc
from service.activations import log_softmax, softmax
from service.calibration import CALIBRATION_FILE, Calibration, write_calibration
from service.calibration.file import file_sha256
from tests.service.helpers import InProcessService, metric
from tests.service.lifecycle.helpers import publish, wait_for
from tests.service.onnx_models import LinearModel

IMAGES = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
T = 0.25
"""A temperature far from 1, so that calibrated and raw scores differ clearly."""

Served = tuple[InProcessService, LinearModel, Path]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    reference = publish(tmp_path, "m", 1, seed=1)
    with InProcessService(tmp_path, poll_interval_seconds=0.1) as service:
        yield service, reference, tmp_path / "m" / "1"


def _calibrate(folder: Path, temperature: float = T, **fields: Any) -> None:
    sha = file_sha256(folder / "model.onnx")
    write_calibration(folder, Calibration(temperature=temperature, model_sha256=sha, **fields))


def _predict(url: str, **options: Any) -> dict[str, Any]:
    body = {"instances": IMAGES.tolist(), **options}
    answer = httpx.post(f"{url}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def _loads(url: str) -> float:
    return metric(url, "service_model_load_duration_seconds_count", model="m")


def test_a_written_calibration_is_served_without_a_reload(served: Served) -> None:
    service, reference, folder = served
    logits = reference.logits(IMAGES)
    before = _predict(service.url)
    assert (before["calibrated"], before["temperature"]) == (False, 1.0)
    np.testing.assert_allclose(before["probabilities"], softmax(logits), rtol=1e-5, atol=1e-6)
    loads = _loads(service.url)
    _calibrate(folder)
    wait_for(lambda: _predict(service.url)["calibrated"], what="the calibration is applied")
    after = _predict(service.url, top_k=3)
    assert after["temperature"] == T
    np.testing.assert_allclose(after["logits"], logits, rtol=1e-5, atol=1e-5)  # raw
    calibrated = softmax(logits, temperature=T)
    np.testing.assert_allclose(after["probabilities"], calibrated, rtol=1e-5, atol=1e-6)
    best = np.sort(calibrated, axis=1)[:, ::-1][:, :3]
    scores = [[c["score"] for c in row] for row in after["top_k"]]
    np.testing.assert_allclose(scores, best, rtol=1e-5, atol=1e-6)
    logs = _predict(service.url, activation="log_softmax")["log_probabilities"]
    np.testing.assert_allclose(logs, log_softmax(logits, temperature=T), rtol=1e-4, atol=1e-5)
    assert _loads(service.url) == loads  # the session was not reloaded
    (state,) = httpx.get(f"{service.url}/models").json()["models"][0]["states"]
    assert (state["state"], state["calibration_temperature"]) == ("READY", T)
    assert httpx.get(f"{service.url}/models/m").json()["calibration"]["temperature"] == T
    # Removed: the model's own scores again.
    (folder / CALIBRATION_FILE).unlink()
    wait_for(lambda: not _predict(service.url)["calibrated"], what="the calibration is gone")


def test_a_request_may_opt_out_compose_or_get_scores_no_calibration_applies_to(
    served: Served,
) -> None:
    service, reference, folder = served
    logits = reference.logits(IMAGES)
    _calibrate(folder)
    wait_for(lambda: _predict(service.url)["calibrated"], what="the calibration is applied")
    raw = _predict(service.url, calibrated=False)
    assert (raw["calibrated"], raw["temperature"]) == (False, 1.0)
    np.testing.assert_allclose(raw["probabilities"], softmax(logits), rtol=1e-5, atol=1e-6)
    composed = _predict(service.url, temperature=2.0)
    assert (composed["calibrated"], composed["temperature"]) == (True, 2.0 * T)
    np.testing.assert_allclose(
        composed["probabilities"], softmax(logits, temperature=2 * T), rtol=1e-5, atol=1e-6
    )
    own = _predict(service.url, temperature=2.0, calibrated=False)
    assert (own["calibrated"], own["temperature"]) == (False, 2.0)
    # Temperature scaling is fitted for softmax: sigmoid scores are the model's own.
    sigmoid = _predict(service.url, activation="sigmoid")
    assert (sigmoid["calibrated"], sigmoid["temperature"]) == (False, 1.0)
    assert _predict(service.url, activation="none")["calibrated"] is False
    # A product out of float32's range is the request's error, not the batch's.
    answer = httpx.post(
        f"{service.url}/predict",
        json={"instances": IMAGES.tolist(), "temperature": 1e-38},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert "temperature" in answer.text


def test_every_transport_says_what_it_applied(served: Served) -> None:
    service, reference, folder = served
    logits = reference.logits(IMAGES)
    _calibrate(folder)
    wait_for(lambda: _predict(service.url)["calibrated"], what="the calibration is applied")
    with grpc.insecure_channel(service.grpc_target) as channel:
        stub = pb_grpc.ClassifierStub(channel)
        pixels = pb.Tensor(shape=IMAGES.shape, dtype=pb.UINT8, data=IMAGES.tobytes())
        answer = stub.Predict(pb.PredictRequest(pixels=pixels))
        assert answer.calibrated
        assert answer.temperature == pytest.approx(T)
        probabilities = np.frombuffer(answer.probabilities.data, np.float32).reshape(4, 10)
        served_logits = np.frombuffer(answer.logits.data, np.float32).reshape(4, 10)
        # onnxruntime's logits differ from numpy's in the last float32 bits, which 1/T
        # amplifies: the scores are checked against the logits served with them.
        np.testing.assert_allclose(served_logits, logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probabilities, softmax(served_logits, temperature=T), atol=1e-7)
        np.testing.assert_allclose(
            probabilities, softmax(logits, temperature=T), rtol=1e-5, atol=1e-6
        )
        raw = stub.Predict(pb.PredictRequest(pixels=pixels, calibrated=False))
        assert (raw.calibrated, raw.temperature) == (False, 1.0)
        listed = stub.ListModels(pb.ListModelsRequest()).models[0].states[0]
        assert listed.calibration_temperature == T
    for module, address in ((triton_http, service.url[7:]), (triton_grpc, service.grpc_target)):
        client: Any = module.InferenceServerClient(address)
        tensor = module.InferInput("images", list(IMAGES.shape), "UINT8")
        tensor.set_data_from_numpy(IMAGES)
        for parameters, expected in (({}, (True, T)), ({"calibrated": False}, (False, 1.0))):
            result = client.infer("m", [tensor], parameters=parameters or None)
            response = result.get_response()
            if module is triton_http:
                given = response["parameters"]
                applied = (given["calibrated"], given["temperature"])
            else:
                given = response.parameters
                applied = (given["calibrated"].bool_param, given["temperature"].double_param)
            assert applied == expected, module.__name__
            scores = result.as_numpy("probabilities")
            wanted = softmax(logits, temperature=expected[1])
            np.testing.assert_allclose(scores, wanted, rtol=1e-5, atol=1e-6)
        client.close()
    metadata = httpx.get(f"{service.url}/v2/models/m").json()
    assert metadata["parameters"] == {"calibration_temperature": T}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "calibration.json"),
        ('{"temperature": -1}', "temperature"),
        ('{"temperature": 0.5, "model_sha256": "' + "0" * 64 + '"}', "another model.onnx"),
        ('{"temperature": 0.5, "colour": "red"}', "colour"),
    ],
)
def test_a_bad_calibration_leaves_the_version_serving_uncalibrated(
    served: Served, content: str, expected: str
) -> None:
    service, _reference, folder = served

    def reason() -> str:
        (state,) = httpx.get(f"{service.url}/models").json()["models"][0]["states"]
        assert state["state"] == "READY"
        text: str = state["reason"]
        return text

    (folder / CALIBRATION_FILE).write_text(content)
    wait_for(lambda: "serving uncalibrated" in reason(), what="the refusal is reported")
    assert expected in reason()
    answer = _predict(service.url)
    assert (answer["calibrated"], answer["temperature"]) == (False, 1.0)
    _calibrate(folder)  # mended: applied, and the reason is gone
    wait_for(lambda: _predict(service.url)["calibrated"], what="the mended file is applied")
    assert reason() == ""


def test_a_calibration_that_cannot_be_looked_at_hides_nothing(served: Served) -> None:
    service, _reference, folder = served
    (folder / CALIBRATION_FILE).symlink_to(CALIBRATION_FILE)  # a link to itself: ELOOP

    def state() -> dict[str, Any]:
        (found,) = httpx.get(f"{service.url}/models").json()["models"][0]["states"]
        return dict(found)

    wait_for(lambda: "cannot be read" in state()["reason"], what="the refusal is reported")
    assert state()["state"] == "READY"
    assert _predict(service.url)["calibrated"] is False


def test_calibrations_rewritten_under_traffic_fail_no_request(served: Served) -> None:
    service, _reference, folder = served
    failures: list[str] = []
    answered: list[bool] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as http:
            while not stop.is_set():
                answer = http.post("/predict", json={"instances": IMAGES[:1].tolist()})
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    answered.append(answer.json()["calibrated"])

    clients = [threading.Thread(target=traffic) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        for round_ in range(6):
            temperature = 0.5 + round_ / 10
            _calibrate(folder, temperature=temperature)

            def applied(wanted: float = temperature) -> bool:
                return bool(_predict(service.url)["temperature"] == wanted)

            wait_for(applied, what=f"calibration {round_} applied")
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert not failures
    assert len(answered) > 20
    assert any(answered)


def test_a_version_calibrated_before_start_up_is_served_calibrated_from_the_first_request(
    tmp_path: Path,
) -> None:
    reference = publish(tmp_path, "m", 1, seed=1)
    _calibrate(tmp_path / "m" / "1")
    with InProcessService(tmp_path, model_control_mode="explicit") as service:
        first = _predict(service.url)
        assert (first["calibrated"], first["temperature"]) == (True, T)
        wanted = softmax(reference.logits(IMAGES), temperature=T)
        np.testing.assert_allclose(first["probabilities"], wanted, rtol=1e-5, atol=1e-6)


def test_the_calibration_command_feeds_the_running_service(tmp_path: Path) -> None:
    from service.evaluate.cli import main
    from training.synthetic import EASY, write_synthetic_cifar10

    publish(tmp_path / "models", "m", 1, seed=1)
    data = write_synthetic_cifar10(
        tmp_path / "data", difficulty=EASY, train_per_batch=10, test_size=400, seed=2
    )
    with InProcessService(tmp_path / "models", poll_interval_seconds=0.1) as service:
        assert _predict(service.url)["calibrated"] is False
        args = ["--dataset", str(data), "--model-repository", str(tmp_path / "models")]
        out = ["--fit-temperature", "--no-progress", "--no-figures", "--out", str(tmp_path / "r")]
        assert main([*args, *out]) == 0
        written = Calibration.model_validate_json(
            (tmp_path / "models" / "m" / "1" / CALIBRATION_FILE).read_text()
        )
        wait_for(lambda: _predict(service.url)["calibrated"], what="the fit is served")
        assert _predict(service.url)["temperature"] == pytest.approx(written.temperature)
