"""Triton's model-repository and statistics extensions, through tritonclient (HTTP and gRPC)
unchanged, against the real servers in explicit control mode; and the control modes' rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tests.service.helpers import InProcessService
from tests.service.onnx_models import write_linear_model


@pytest.fixture(scope="module")
def explicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    root = tmp_path_factory.mktemp("explicit")
    write_linear_model(root / "a" / "1" / "model.onnx", seed=1)
    write_linear_model(root / "b" / "1" / "model.onnx", seed=2)
    service = InProcessService(root, model_control_mode="explicit").start()
    yield service
    service.stop()


@pytest.fixture(params=["grpc", "http"])
def triton(request: pytest.FixtureRequest, explicit: InProcessService) -> Iterator[object]:
    if request.param == "grpc":
        client: object = triton_grpc.InferenceServerClient(explicit.grpc_target)
    else:
        client = triton_http.InferenceServerClient(f"127.0.0.1:{explicit.http_port}")
    yield client
    client.close()  # type: ignore[attr-defined]


def _index(client: object) -> dict[str, tuple[str, str, str]]:
    if isinstance(client, triton_grpc.InferenceServerClient):
        found = client.get_model_repository_index(as_json=True).get("models", [])
    else:
        found = client.get_model_repository_index()  # type: ignore[attr-defined]
    return {
        m["name"]: (m.get("version", ""), m.get("state", ""), m.get("reason", "")) for m in found
    }


def _stats(client: object, name: str, version: str = "") -> list[dict[str, Any]]:
    if isinstance(client, triton_grpc.InferenceServerClient):
        found = client.get_inference_statistics(name, version, as_json=True)
    else:
        found = client.get_inference_statistics(name, version)  # type: ignore[attr-defined]
    stats: list[dict[str, Any]] = found["model_stats"]
    return stats


def _infer(client: object, name: str, rows: int) -> np.ndarray:
    module = triton_grpc if isinstance(client, triton_grpc.InferenceServerClient) else triton_http
    images = np.random.default_rng(rows).integers(0, 256, (rows, 32, 32, 3)).astype(np.float32)
    data = module.InferInput("images", list(images.shape), "FP32")
    data.set_data_from_numpy(images)
    result = client.infer(name, [data])  # type: ignore[attr-defined]
    logits: np.ndarray = result.as_numpy("logits")
    return logits


def test_index_unload_load_and_statistics(triton: object) -> None:
    client = triton
    assert _index(client) == {"a": ("1", "READY", ""), "b": ("1", "READY", "")}
    before = _stats(client, "a", "1")[0]
    assert _infer(client, "a", 3).shape == (3, 10)
    after = _stats(client, "a", "1")[0]
    assert int(after["inference_count"]) == int(before.get("inference_count", 0)) + 3
    assert int(after["execution_count"]) == int(before.get("execution_count", 0)) + 1
    success = after["inference_stats"]["success"]
    assert int(success["count"]) >= 1
    assert int(success["ns"]) > 0
    assert int(after["inference_stats"]["compute_infer"]["ns"]) > 0
    assert any(int(b["batch_size"]) == 3 for b in after["batch_stats"])
    assert {s["name"] for s in _stats(client, "")} == {"a", "b"}

    client.unload_model("b")  # type: ignore[attr-defined]
    assert _index(client)["b"] == ("", "UNAVAILABLE", "not loaded")
    assert not client.is_model_ready("b")  # type: ignore[attr-defined]
    with pytest.raises(InferenceServerException, match="not served"):
        _infer(client, "b", 1)
    assert client.is_server_ready()  # type: ignore[attr-defined]  # "a" still serves

    client.load_model("b")  # type: ignore[attr-defined]
    assert _index(client)["b"] == ("1", "READY", "")
    assert _infer(client, "b", 2).shape == (2, 10)


def test_load_refusals(triton: object) -> None:
    client = triton
    with pytest.raises(InferenceServerException, match="not in the repository"):
        client.load_model("nope")  # type: ignore[attr-defined]
    with pytest.raises(InferenceServerException, match="not supported"):
        client.load_model("a", config=json.dumps({"max_batch_size": 4}))  # type: ignore[attr-defined]
    with pytest.raises(InferenceServerException, match="not supported"):
        client.load_model("a", config="{}", files={"file:1/model.onnx": b"x"})  # type: ignore[attr-defined]
    assert _index(client)["a"] == ("1", "READY", "")


def test_a_failed_reload_keeps_the_loaded_version(explicit: InProcessService) -> None:
    root = explicit.settings.model_repository
    good = (root / "a" / "1" / "model.onnx").read_bytes()
    (root / "a" / "2").mkdir()
    (root / "a" / "2" / "model.onnx").write_bytes(b"not an onnx file")
    try:
        with httpx.Client(base_url=explicit.url) as http:
            answer = http.post("/v2/repository/models/a/load")
            assert answer.status_code == 400
            assert "version 2 failed to load" in answer.json()["error"]
            index = {(e["name"], e["version"]): e for e in http.post("/v2/repository/index").json()}
            assert index["a", "2"]["state"] == "UNAVAILABLE"
            assert "onnxruntime cannot load it" in index["a", "2"]["reason"]
            assert index["a", "1"]["state"] == "READY"
            assert http.get("/v2/health/ready").status_code == 200
            listed = {m["name"]: m for m in http.get("/models").json()["models"]}["a"]
            assert listed["versions"] == ["1"]
            assert {s["version"]: s["state"] for s in listed["states"]} == {
                "1": "READY", "2": "FAILED"
            }  # fmt: skip
            assert http.post("/v2/models/a/infer", json=_body()).status_code == 200
            ready = http.post("/v2/repository/index", json={"ready": True}).json()
            assert {(e["name"], e["version"]) for e in ready} == {("a", "1"), ("b", "1")}
    finally:
        (root / "a" / "2" / "model.onnx").write_bytes(good)
        (root / "a" / "2" / "model.onnx").unlink()
        (root / "a" / "2").rmdir()


def _body() -> dict[str, object]:
    return {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                        "data": [0] * 3072}]}  # fmt: skip


@pytest.mark.parametrize("mode", ["none", "poll"])
def test_unload_needs_explicit_mode(tmp_path: Path, mode: str) -> None:
    write_linear_model(tmp_path / "a" / "1" / "model.onnx")
    service = InProcessService(tmp_path, model_control_mode=mode).start()
    try:
        client = triton_grpc.InferenceServerClient(service.grpc_target)
        with pytest.raises(InferenceServerException, match="needs model_control_mode explicit"):
            client.unload_model("a")
        if mode == "none":
            with pytest.raises(InferenceServerException, match="model control is off"):
                client.load_model("a")
        else:
            client.load_model("a")  # poll: a look at the model now
        http = httpx.post(f"{service.url}/v2/repository/models/a/unload")
        assert http.status_code == 400
        assert "explicit" in http.json()["error"]
        assert client.is_model_ready("a")
        client.close()
    finally:
        service.stop()
