"""The model repository a benchmark serves: ``models/`` when it holds a model, else a synthetic
classifier written to a scratch folder (onnx.helper only; no TensorFlow)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench._timing import median_ms

__all__ = [
    "QUICKSTART_LIKE_LAYERS",
    "copy_model",
    "first_model",
    "model_repository",
    "one_image_ms",
    "one_thread_session",
    "write_synthetic_model",
]

QUICKSTART_LIKE_LAYERS = 4
"""Layers that give the synthetic model about the quickstart model's cost (≈0.45 ms of one
core per image on the 2-core VM)."""


def write_synthetic_model(path: Path, *, layers: int = 0, seed: int = 0, classes: int = 10) -> None:
    """Write a classifier over [N, 32, 32, 3] 0–255 pixels to ``path``: ``layers`` dense
    256 → 256 ReLU layers applied to each 256-pixel slice of the image (each costs ≈0.8 M
    multiply-adds per image), then a linear layer to ``classes`` logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Reshape", ["images", "slices_shape"], ["slices"]),
        helper.make_node("Mul", ["slices", "scale"], ["hidden_0"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([-1, 256], np.int64), "slices_shape"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, 3072], np.int64), "flat_shape"),
        numpy_helper.from_array(rng.normal(0, 0.05, (3072, classes)).astype(np.float32), "w_out"),
        numpy_helper.from_array(rng.normal(0, 0.1, classes).astype(np.float32), "b_out"),
    ]
    for i in range(layers):
        weights = rng.normal(0, np.sqrt(2 / 256), (256, 256)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weights, f"w_{i}"))
        nodes += [
            helper.make_node("MatMul", [f"hidden_{i}", f"w_{i}"], [f"product_{i}"]),
            helper.make_node("Relu", [f"product_{i}"], [f"hidden_{i + 1}"]),
        ]
    nodes += [
        helper.make_node("Reshape", [f"hidden_{layers}", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w_out"], ["product"]),
        helper.make_node("Add", ["product", "b_out"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "synthetic",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 32, 32, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def first_model(repository: Path) -> str | None:
    """The name of the first model (alphabetically) in ``repository``, if any."""
    found = sorted(p.parts[-3] for p in repository.glob("*/*/model.onnx"))
    return found[0] if found else None


def copy_model(source: Path, name: str, root: Path, model: str, version: int = 1) -> None:
    """Copy the newest ``model.onnx`` of ``name`` in the repository ``source`` into the
    repository ``root`` as version ``version`` of ``model``."""
    files = sorted((source / name).glob("*/model.onnx"))
    target = root / model / str(version)
    target.mkdir(parents=True)
    shutil.copy(files[-1], target / "model.onnx")


@contextmanager
def model_repository(
    requested: Path | None, synthetic_layers: int | None = None
) -> Iterator[tuple[Path, str]]:
    """The repository to serve and the model to call: ``requested`` (or ``models/`` when it
    holds a model), else, or when ``synthetic_layers`` is given, a scratch repository holding
    one synthetic model (removed on exit)."""
    if synthetic_layers is None:
        candidate = requested or Path("models")
        name = first_model(candidate) if candidate.is_dir() else None
        if name is not None:
            yield candidate, name
            return
        if requested is not None:
            raise SystemExit(f"no <model>/<version>/model.onnx under {requested}")
    layers = QUICKSTART_LIKE_LAYERS if synthetic_layers is None else synthetic_layers
    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        write_synthetic_model(Path(scratch) / "synthetic" / "1" / "model.onnx", layers=layers)
        yield Path(scratch), "synthetic"


def one_thread_session(model_file: Path) -> ort.InferenceSession:
    """onnxruntime on ``model_file`` with one intra-op and one inter-op thread, on the CPU: the
    model alone, as the baselines time it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def one_image_ms(model_file: Path, runs: int = 2000) -> float:
    """Median milliseconds of one image through :func:`one_thread_session`, hot: the model
    alone at batch 1."""
    session = one_thread_session(model_file)
    feed = {session.get_inputs()[0].name: np.zeros((1, 32, 32, 3), np.float32)}
    return median_ms(lambda: session.run(None, feed), runs)
