"""KServe's own Python model server, the second peer, on the same ONNX file: installed on first
use into a throwaway virtual environment ``.bench/kserve/venv`` (never a dependency of this
project), run as its own process, and stopped by its pid.

Its settings, written down: kserve 0.21.0, ``kserve.ModelServer(workers=1)`` (one process: its
FastAPI REST server on uvicorn and its ``grpc.aio`` server share one event loop) with a small
``kserve.Model`` (``RUNTIME`` below: onnxruntime with one intra-op and one inter-op thread,
then softmax, outputs ``logits`` and ``probabilities`` as V2 tensors, as the MLServer runtime
of :mod:`bench.peer`; its ``predict`` is synchronous, so the model runs on the event loop as
MLServer's does with ``parallel_workers: 0``). Logging per request is off, as in our service:
``enable_latency_logging=False``, uvicorn's access log without a handler (kserve has no
switch for it: ``--access_log_format`` only replaces it with another), and
``KSERVE_LOGLEVEL=WARNING``, which silences the INFO line kserve's gRPC logging interceptor
writes for every call and the timing middleware's line for every REST request. KServe has no
adaptive batching in its Python server. Its REST server listens on 0.0.0.0 and its gRPC server
on [::] (kserve fixes both); the benchmark only ever connects to 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.peer import Peer, install_venv, peer_process, prometheus_sum
from service.launcher import REPO, free_port

__all__ = ["KSERVE_SETTINGS", "running_kserve"]

HOME = REPO / ".bench" / "kserve"
REQUIREMENTS = ["kserve==0.21.0", "onnxruntime"]
KSERVE_SETTINGS = "1 worker, no batching"
RUNTIME = """
import argparse
import logging

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server
from kserve.protocol.grpc import interceptors
from prometheus_client import Counter

# gRPC calls that ended in an exception, on kserve's /metrics: h2load cannot read gRPC
# statuses (they travel in trailers). Counted where kserve turns exceptions into statuses, so
# calls that succeed pay nothing for it.
GRPC_ERRORS = Counter("bench_grpc_errors", "gRPC calls that ended with an error status")
_handle_exception = interceptors.ExceptionToStatusInterceptor.handle_exception


async def _counted(self, *args, **kwargs):
    GRPC_ERRORS.inc()
    return await _handle_exception(self, *args, **kwargs)


interceptors.ExceptionToStatusInterceptor.handle_exception = _counted


class OnnxClassifier(Model):
    def __init__(self, name: str, uri: str) -> None:
        super().__init__(name)
        self.uri = uri
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            self.uri, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self.ready = True
        return True

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        images = payload.inputs[0].as_numpy().astype(np.float32)
        logits = self._session.run(None, {self._input: images})[0]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        binary = payload.use_binary_outputs  # gRPC with raw inputs: raw outputs too
        outputs = []
        for name, array in (("logits", logits), ("probabilities", probabilities)):
            output = InferOutput(name, list(array.shape), "FP32")
            output.set_data_from_numpy(array, binary_data=binary)
            outputs.append(output)
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=outputs,
            use_binary_outputs=binary,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_file", required=True)
    args, _ = parser.parse_known_args()
    server = ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=1,
        enable_latency_logging=False,
    )
    # uvicorn writes an access line per request while its logger has a handler.
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate = [], False
    server.start([OnnxClassifier(args.model_name, args.model_file)])
"""


def _kserve_grpc_errors(line: str) -> bool:
    return line.startswith("bench_grpc_errors_total")


@contextmanager
def running_kserve(model_file: Path, model_name: str) -> Iterator[Peer]:
    """KServe's model server serving ``model_file`` as ``model_name``, ready when entered."""
    python = install_venv(HOME, REQUIREMENTS, "KServe")
    workdir = HOME / "serve"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "runtime.py").write_text(RUNTIME)
    http_port, grpc_port = free_port(), free_port()
    metrics = f"http://127.0.0.1:{http_port}/metrics"
    peer = Peer("KServe", KSERVE_SETTINGS, http_port, grpc_port,
                lambda: prometheus_sum(metrics, _kserve_grpc_errors))  # fmt: skip
    command = [str(python), "runtime.py", "--model_name", model_name,
               "--model_file", str(model_file.resolve()),
               "--http_port", str(http_port), "--grpc_port", str(grpc_port)]  # fmt: skip
    env = {**os.environ, "KSERVE_LOGLEVEL": "WARNING"}
    with peer_process(peer, command, workdir, model_name, env):
        yield peer
