"""MLServer, the first peer server, on the same ONNX file: installed on first use into a
throwaway virtual environment under ``.bench/`` (never a dependency of this project), run as its
own process on loopback, and stopped by its pid.

Its settings, written down: MLServer 1.7.1 with a small custom runtime (``RUNTIME`` below:
onnxruntime with one intra-op and one inter-op thread, then softmax, as our model processes run
it), ``debug`` off (MLServer's default, on, adds an access log line per REST request, a logging
interceptor on gRPC and DEBUG-level logging; our service logs nothing per request either), and,
per path, the best of the settings ``python -m bench.peer_sweep`` tries (``SWEEP``):
``parallel_workers`` ∈ {0, 1} × adaptive batching ∈ {none, 32 requests / 2 ms, 64 / 2 ms,
32 / 10 ms}, over V2 gRPC with 32 in flight and V2 REST JSON with 16 in flight, 3 s a point.
With ``parallel_workers: 0`` the model runs in MLServer's main process, on its event loop (on
two cores this saves the hop to a worker process); with 1, in one worker process.

Swept on the 2-vCPU development VM (2026-12-07, ``--repeat 3``: three rounds over the grid,
3 s a point, each figure the best of its three tries, req/s; the machine was shared with
another engineer's tests, and tries of one setting spread by about ±15%):

================================  ==========  ===============
parallel_workers, batching        gRPC at 32  REST JSON at 16
================================  ==========  ===============
0, none                                  772              800
0, 32 / 2 ms                             786          **848**
0, 64 / 2 ms                             731              816
0, 32 / 10 ms                        **873**              645
1, none                                  658              631
1, 32 / 2 ms                             587              614
1, 64 / 2 ms                             570              611
1, 32 / 10 ms                            755              480
================================  ==========  ===============

Best (``MLSERVER_BEST``): ``parallel_workers: 0`` on both paths, with adaptive batching of 32
requests / 10 ms over gRPC and 32 / 2 ms over REST JSON (also the best by the median of the
tries: 791 and 795 req/s). ``parallel_workers: 1`` lost on every batching setting (the worker
process costs an IPC hop per batch on two cores); among ``parallel_workers: 0`` the batching
settings are within the noise of one another. ``debug`` on against off, same settings: within
noise (gRPC 657/640 against 664/711 req/s; REST 539/528 against 501/555).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.launcher import REPO, free_port, stop_process, wait_until_ready
from service.lifetime import die_with_parent

__all__ = [
    "MLSERVER_BEST",
    "SWEEP",
    "MLServerSettings",
    "Peer",
    "install_venv",
    "peer_process",
    "prometheus_sum",
    "running_mlserver",
]

HOME = REPO / ".bench" / "mlserver"
REQUIREMENTS = ["mlserver==1.7.1", "onnxruntime", "uvloop<0.22"]
"""uvloop 0.22 removed the implicit event loop that MLServer 1.7's workers still ask for."""
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
        options.inter_op_num_threads = 1
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


@dataclass(frozen=True)
class MLServerSettings:
    """The MLServer settings a run varies."""

    parallel_workers: int = 0
    """0: the model runs in the main process; n: in n worker processes."""
    max_batch_size: int = 0
    """Adaptive batching: at most this many requests together (0 or 1: no batching)."""
    max_batch_time: float = 0.0
    """Adaptive batching: the longest a request waits for others, in seconds."""
    debug: bool = False
    """MLServer's debug mode: access logs and DEBUG-level logging (its default is on)."""

    @property
    def batching(self) -> str:
        if self.max_batch_size <= 1:
            return "none"
        return f"{self.max_batch_size} / {1e3 * self.max_batch_time:g} ms"

    @property
    def label(self) -> str:
        debug = ", debug" if self.debug else ""
        return f"{self.parallel_workers} workers, batching {self.batching}{debug}"

    @property
    def directory(self) -> str:
        """The name of the working directory of a server with these settings."""
        debug = "-debug" if self.debug else ""
        return (f"serve-{self.parallel_workers}w-{self.max_batch_size}"
                f"-{self.max_batch_time * 1e3:g}ms{debug}")  # fmt: skip

    def server_settings(self) -> dict[str, object]:
        return {"parallel_workers": self.parallel_workers, "debug": self.debug}

    def model_settings(self) -> dict[str, object]:
        if self.max_batch_size <= 1:
            return {}
        return {"max_batch_size": self.max_batch_size, "max_batch_time": self.max_batch_time}


SWEEP = [
    MLServerSettings(workers, size, time)
    for workers in (0, 1)
    for size, time in ((0, 0.0), (32, 0.002), (64, 0.002), (32, 0.01))
]
"""What ``python -m bench.peer_sweep`` tries."""
MLSERVER_BEST = {
    "V2 gRPC raw": MLServerSettings(parallel_workers=0, max_batch_size=32, max_batch_time=0.01),
    "V2 REST JSON": MLServerSettings(parallel_workers=0, max_batch_size=32, max_batch_time=0.002),
}
"""By path: the best of :data:`SWEEP` on the development VM (see the module's docstring)."""


def prometheus_sum(url: str, keep: Callable[[str], bool]) -> float:
    """The sum of the Prometheus samples at ``url`` whose line ``keep`` accepts."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(url).text.splitlines()
        if line and not line.startswith("#") and keep(line)
    )


@dataclass(frozen=True)
class Peer:
    """A running server the benchmark drives: a peer, or the service itself."""

    name: str
    settings: str
    """Its settings, in a few words (the table's batching column)."""
    http_port: int
    grpc_port: int
    grpc_errors: Callable[[], float]
    """gRPC calls that failed so far, by the server's own count: any status but OK, and not
    CANCELLED (calls still in flight when the load generator stops end so)."""


def _mlserver_grpc_errors(line: str) -> bool:
    return (
        line.startswith("grpc_server_handled_total")
        and 'grpc_code="OK"' not in line
        and 'grpc_code="CANCELLED"' not in line
    )


def install_venv(home: Path, requirements: list[str], name: str) -> Path:
    """The Python of a throwaway virtual environment ``home/venv``, created with
    ``requirements`` on first use."""
    python = home / "venv" / "bin" / "python"
    if not python.exists():
        print(f"installing {name} into {home / 'venv'} (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)
    return python


@contextmanager
def peer_process(
    peer: Peer,
    command: list[str],
    workdir: Path,
    model_name: str,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """``command`` run in ``workdir`` as ``peer``'s server process (its output in
    ``<workdir>/<name>.log``), ready when entered (its V2 readiness for ``model_name``),
    stopped by its pid on exit."""
    log_file = workdir / f"{peer.name.lower()}.log"
    log = open(log_file, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent, env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{peer.http_port}/v2/models/{model_name}/ready"
        wait_until_ready(process, url, 120, lambda: f"{peer.name}'s log: {log_file}")
        yield
    finally:
        stop_process(process)
        log.close()


@contextmanager
def running_mlserver(
    model_file: Path, model_name: str, settings: MLServerSettings | None = None
) -> Iterator[Peer]:
    """MLServer serving ``model_file`` as ``model_name``, ready when entered."""
    settings = settings or MLSERVER_BEST["V2 gRPC raw"]
    executable = install_venv(HOME, REQUIREMENTS, "MLServer").parent / "mlserver"
    workdir = HOME / settings.directory  # one each: several may run at once
    model_dir = workdir / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    (workdir / "runtime.py").write_text(RUNTIME)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    (workdir / "settings.json").write_text(json.dumps({
        "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "host": "127.0.0.1", **settings.server_settings(),
    }))  # fmt: skip
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": model_name, "implementation": "runtime.OnnxClassifier",
        "parameters": {"uri": str(model_file.resolve())}, **settings.model_settings(),
    }))  # fmt: skip
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    peer = Peer("MLServer", settings.label, http_port, grpc_port,
                lambda: prometheus_sum(metrics, _mlserver_grpc_errors))  # fmt: skip
    with peer_process(peer, [str(executable), "start", "."], workdir, model_name):
        yield peer
