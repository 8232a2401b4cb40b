"""MLServer, the peer server, on the same ONNX file: installed on first use into a throwaway
virtual environment under ``.bench/`` (never a dependency of this project), run as its own
process on loopback, and stopped by its pid.

Its settings, written down: MLServer 1.7's defaults (one parallel inference worker) with a
small custom runtime (``RUNTIME`` below: onnxruntime with one intra-op thread, then softmax, as
our model processes run it) and adaptive batching of up to 32 requests waiting at most 10 ms —
the best of the settings tried on the benchmark machine (no batching; 2 ms; 10 ms)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service.launcher import REPO, free_port, stop_process, wait_until_ready
from service.lifetime import die_with_parent

__all__ = ["MLSERVER_BATCHING", "Peer", "running_mlserver"]

HOME = REPO / ".bench" / "mlserver"
REQUIREMENTS = ["mlserver==1.7.1", "onnxruntime", "uvloop<0.22"]
"""uvloop 0.22 removed the implicit event loop that MLServer 1.7's workers still ask for."""
MLSERVER_BATCHING = {"max_batch_size": 32, "max_batch_time": 0.01}
RUNTIME = """
import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxClassifier(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(
            self.settings.parameters.uri, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        logits = self._session.run(None, {self._input: images})[0]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("logits", logits),
                NumpyCodec.encode_output("probabilities", exp / exp.sum(axis=1, keepdims=True)),
            ],
        )
"""


class Peer:
    """A running MLServer: its ports."""

    def __init__(self, http_port: int, grpc_port: int, metrics_port: int) -> None:
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port

    def grpc_errors(self) -> float:
        """gRPC calls that failed so far: any status but OK, and CANCELLED (calls still in
        flight when the load generator stops)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("grpc_server_handled_total")
            and 'grpc_code="OK"' not in line
            and 'grpc_code="CANCELLED"' not in line
        )


def _install() -> Path:
    python = HOME / "venv" / "bin" / "python"
    if not python.exists():
        print("installing MLServer into .bench/mlserver/venv (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(HOME / "venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    return HOME / "venv" / "bin" / "mlserver"


@contextmanager
def running_mlserver(model_file: Path, model_name: str) -> Iterator[Peer]:
    """MLServer serving ``model_file`` as ``model_name``, ready when entered."""
    executable = _install()
    workdir = HOME / "serve"
    model_dir = workdir / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    (workdir / "runtime.py").write_text(RUNTIME)
    peer = Peer(free_port(), free_port(), free_port())
    (workdir / "settings.json").write_text(json.dumps({
        "http_port": peer.http_port, "grpc_port": peer.grpc_port,
        "metrics_port": peer.metrics_port, "host": "127.0.0.1", "parallel_workers": 1,
    }))  # fmt: skip
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": model_name, "implementation": "runtime.OnnxClassifier",
        "parameters": {"uri": str(model_file.resolve())}, **MLSERVER_BATCHING,
    }))  # fmt: skip
    log = open(workdir / "mlserver.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(executable), "start", "."], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{peer.http_port}/v2/models/{model_name}/ready"
        wait_until_ready(process, url, 120, lambda: f"MLServer's log: {workdir / 'mlserver.log'}")
        yield peer
    finally:
        stop_process(process)
        log.close()
