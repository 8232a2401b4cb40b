"""Small ONNX classifiers built directly with onnx.helper (no TensorFlow), for service tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass(frozen=True)
class LinearModel:
    """logits = flatten(pixels / 255) @ weights + bias, and its numpy reference."""

    weights: np.ndarray
    bias: np.ndarray

    def logits(self, images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        return np.asarray(flat @ self.weights + self.bias, dtype=np.float32)


def write_linear_model(
    path: Path,
    *,
    seed: int = 0,
    classes: int = 10,
    input_name: str = "images",
    output_name: str = "logits",
    metadata: dict[str, str] | None = None,
    class_names: list[str] | None = None,
    trained: LinearModel | None = None,
) -> LinearModel:
    """Write a linear classifier over [N, 32, 32, 3] 0–255 pixels to ``path``: random weights
    drawn from ``seed``, or ``trained``'s."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, (3072, classes)).astype(np.float32)
    bias = rng.normal(0, 0.1, classes).astype(np.float32)
    if trained is not None:
        weights, bias = trained.weights.astype(np.float32), trained.bias.astype(np.float32)
    nodes = [
        helper.make_node("Reshape", [input_name, "flat_shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "weights"], ["product"]),
        helper.make_node("Add", ["product", "bias"], [output_name]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([-1, 3072], np.int64), "flat_shape"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(bias, "bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 32, 32, 3])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    props = dict(metadata or {})
    if class_names is not None:
        props["class_names"] = json.dumps(class_names)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return LinearModel(weights, bias)


def fit_linear_model(images: np.ndarray, labels: np.ndarray, scale: float = 1.0) -> LinearModel:
    """A ridge-regression classifier of ``images`` (0–255 pixels) onto ±1 one-hot targets, its
    logits multiplied by ``scale`` (which changes its calibration, not its predictions)."""
    flat = images.reshape(len(images), -1).astype(np.float64) / 255
    targets = 2 * np.eye(int(labels.max()) + 1)[labels] - 1
    design = np.hstack([flat, np.ones((len(flat), 1))])
    solved = design.T @ np.linalg.solve(design @ design.T + 10 * np.eye(len(flat)), targets)
    return LinearModel(
        (solved[:-1] * scale).astype(np.float32), (solved[-1] * scale).astype(np.float32)
    )


POISON = 200
"""A first pixel value from which :func:`write_poisoned_model`'s model fails at run time."""


def write_poisoned_model(path: Path, *, seed: int = 0) -> LinearModel:
    """:func:`write_linear_model`'s classifier, except that onnxruntime fails a batch in which
    any image's first pixel value is :data:`POISON` or more: that value indexes a table of
    :data:`POISON` zeros (``Gather``: an index out of bounds is a run-time error) whose entry is
    added to the logits. Other batches get the linear model's logits."""
    reference = write_linear_model(path, seed=seed)
    model = onnx.load(str(path))
    graph = model.graph
    (output,) = [node for node in graph.node if node.op_type == "Add"]
    output.output[0] = "linear_logits"
    graph.node.extend([
        helper.make_node("Gather", ["flat", "first_index"], ["first_pixel"], axis=1),
        helper.make_node("Cast", ["first_pixel"], ["table_index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["zeros_table", "table_index"], ["guard"], axis=0),
        helper.make_node("Unsqueeze", ["guard", "guard_axes"], ["guard_column"]),
        helper.make_node("Add", ["linear_logits", "guard_column"], ["logits"]),
    ])  # fmt: skip
    graph.initializer.extend([
        numpy_helper.from_array(np.array(0, np.int64), "first_index"),
        numpy_helper.from_array(np.zeros(POISON, np.float32), "zeros_table"),
        numpy_helper.from_array(np.array([1], np.int64), "guard_axes"),
    ])  # fmt: skip
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return reference


def write_slow_model(path: Path, *, seed: int = 0, layers: int = 24) -> LinearModel:
    """:func:`write_linear_model`'s classifier plus work that takes a while per run (a chain of
    matrix products over the input, tiled 256 times, added to the logits times zero): a batch
    stays in flight long enough for a test to act meanwhile. Same logits as the linear model."""
    reference = write_linear_model(path, seed=seed)
    model = onnx.load(str(path))
    graph = model.graph
    (output,) = [node for node in graph.node if node.op_type == "Add"]
    output.output[0] = "linear_logits"
    nodes = [
        helper.make_node("Slice", ["scaled", "starts", "ends", "axes"], ["head"]),
        helper.make_node("Tile", ["head", "repeats"], ["work_0"]),
    ]
    weights = np.eye(512, dtype=np.float32)
    for layer in range(layers):
        nodes.append(helper.make_node("MatMul", [f"work_{layer}", "chain"], [f"work_{layer + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"work_{layers}"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["linear_logits", "nothing"], ["logits"]),
    ]
    graph.node.extend(nodes)
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], np.int64), "starts"),
        numpy_helper.from_array(np.array([512], np.int64), "ends"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(np.array([256, 1], np.int64), "repeats"),
        numpy_helper.from_array(weights, "chain"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
    ])  # fmt: skip
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return reference
