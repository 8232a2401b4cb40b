"""Benchmark: the service's transports against raw onnxruntime in-process (the ceiling).

Run ``.venv/bin/python -m bench.serving [--model-repository models]`` after ``make serve`` has
built the default model. It starts ``python -m service`` on free loopback ports and times, for
several batch sizes (median of repeats, client and server on the same machine): REST
``/predict`` with JSON pixels and with base64 PNGs, the project's gRPC ``Predict`` with a
uint8 tensor, and the Open Inference Protocol over REST with binary tensor data; plus what
encoding the JSON response costs with orjson versus the standard library.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import orjson
from PIL import Image

from bench._timing import median_ms
from service.activations import softmax
from service.client import GrpcClient
from service.dataplane import DataPlane
from service.repository import ModelRepository, ServedModel
from service.telemetry import Telemetry
from tests.service.live import live_service

BATCHES = (1, 32, 256)


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def measure(
    http: httpx.Client,
    grpc_client: GrpcClient,
    plane: DataPlane,
    session: ort.InferenceSession,
    model: ServedModel,
    images: np.ndarray,
    repeats: int,
) -> dict[str, float]:
    """Each path's median time for one batch of ``images``."""
    pixels = images.astype(np.float32)
    feeds = {model.input.name: pixels}
    pixel_body = orjson.dumps(
        {"instances": images, "model": model.name}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    png_body = json.dumps({"images": [png_base64(i) for i in images], "model": model.name})
    headers = {"content-type": "application/json"}
    logits = session.run(None, feeds)[0]
    response = {"logits": logits, "probabilities": softmax(logits)}

    def post(body: str | bytes) -> None:
        http.post("/predict", content=body, headers=headers).raise_for_status()

    v2_header = json.dumps({
        "inputs": [{"name": model.input.name, "shape": list(images.shape), "datatype": "UINT8",
                    "parameters": {"binary_data_size": images.nbytes}}],
        "parameters": {"binary_data_output": True},
    }).encode()  # fmt: skip
    v2_body = v2_header + images.tobytes()
    v2_headers = {"Inference-Header-Content-Length": str(len(v2_header))}

    def post_v2() -> None:
        url = f"/v2/models/{model.name}/infer"
        http.post(url, content=v2_body, headers=v2_headers).raise_for_status()

    return {
        "ort": median_ms(lambda: softmax(session.run(None, feeds)[0]), repeats),
        "plane": median_ms(lambda: plane.predict(pixels, model=model.name), repeats),
        "json": median_ms(lambda: post(pixel_body), repeats),
        "png": median_ms(lambda: post(png_body), repeats),
        "grpc": median_ms(lambda: grpc_client.predict(images, model=model.name), repeats),
        "v2": median_ms(post_v2, repeats),
        "orjson": median_ms(
            lambda: orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY), repeats
        ),
        "stdjson": median_ms(
            lambda: json.dumps({k: v.tolist() for k, v in response.items()}), repeats
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    repository = ModelRepository.load(args.model_repository, device="cpu", intra_op_threads=0)
    model = next(iter(repository))
    plane = DataPlane(repository, Telemetry(), max_batch_size=4096)
    plane.set_ready(True)
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    print(
        f"{date.today().isoformat()} · {platform.machine()} · {os.cpu_count()} CPUs · "
        f"model {model.name} v{model.version} ({model.path}) · onnxruntime {ort.__version__} · "
        f"median of {args.repeats}, milliseconds\n"
    )
    print(
        "| batch | ORT in-process | data plane | REST JSON pixels | REST base64 PNG "
        "| gRPC uint8 tensor | V2 REST binary | gRPC / ORT | response JSON, orjson "
        "| response JSON, json |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with (
        live_service(args.model_repository, "--max-batch-size", "4096") as service,
        httpx.Client(base_url=service.url, timeout=120) as http,
        GrpcClient(f"127.0.0.1:{service.grpc_port}") as grpc_client,
    ):
        for batch in BATCHES:
            images = rng.integers(0, 256, (batch, *model.image_shape)).astype(np.uint8)
            row = measure(http, grpc_client, plane, session, model, images, args.repeats)
            print(
                f"| {batch} | {row['ort']:.2f} | {row['plane']:.2f} | {row['json']:.2f} "
                f"| {row['png']:.2f} | {row['grpc']:.2f} | {row['v2']:.2f} "
                f"| {row['grpc'] / row['ort']:.1f} | {row['orjson']:.3f} | {row['stdjson']:.3f} |"
            )


if __name__ == "__main__":
    main()
