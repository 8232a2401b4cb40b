"""The lone-request floor of ``bench.lone_request``: a ``grpc.aio`` server that runs the ONNX
model in its handler must answer what the model itself gives (logits and their softmax), to a
standard V2 client, or the floor it measures would be for less work than the service does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tritonclient.grpc as triton

from bench.bound import running_null_grpc
from service.activations import softmax
from tests.service.onnx_models import write_linear_model


def test_the_floor_server_answers_the_models_logits_and_probabilities(tmp_path: Path) -> None:
    model_file = tmp_path / "model.onnx"
    model = write_linear_model(model_file, seed=3)
    pixels = np.random.default_rng(5).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    with running_null_grpc(f"model:{model_file}") as (_, port):
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        images = triton.InferInput("images", list(pixels.shape), "UINT8")
        images.set_data_from_numpy(pixels)
        answer = client.infer("cifar10", [images])
        client.close()
    logits = answer.as_numpy("logits")
    np.testing.assert_allclose(logits, model.logits(pixels), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(answer.as_numpy("probabilities"), softmax(logits), atol=1e-6)
