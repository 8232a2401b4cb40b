"""Export a trained run to ONNX in the model repository, with metadata and a parity check.

Writes ``<repository>/<name>/<version>/model.onnx``: opset ≥ 17, input ``images``
``[N, 32, 32, 3]`` float32 0–255 NHWC with a dynamic batch axis, output ``logits``
``[N, C]``. Everything the server needs is embedded as ONNX ``metadata_props``. The file is
only written after onnxruntime's logits match Keras's on the run's validation images.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from training.model import ModelConfig, build_core, build_training_model

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "OPSET",
    "PARITY_TOLERANCE",
    "ExportError",
    "export_run",
    "next_version",
]

OPSET = 17
PARITY_TOLERANCE = 1e-4
"""Largest |logit difference| between onnxruntime and Keras that an export accepts."""
INPUT_NAME, OUTPUT_NAME = "images", "logits"
FILE_MODE, FOLDER_MODE = 0o644, 0o755
"""Modes of what export writes: readable by any user, whatever the umask."""


class ExportError(Exception):
    """The run cannot be exported, or the exported graph disagrees with Keras."""


def git_revision() -> str:
    """The source revision the export was made from (``unknown`` outside a git checkout)."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}-dirty" if dirty else revision


def next_version(repository: Path, name: str) -> int:
    """One more than the highest numeric version folder of ``name`` (1 when there is none)."""
    folder = repository / name
    versions = (
        [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    )
    return max(versions, default=0) + 1


def _metadata(run: dict[str, Any], summary: dict[str, Any]) -> dict[str, str]:
    return {
        "class_names": json.dumps(run["class_names"]),
        "input_layout": "NHWC",
        "input_pixel_range": "0-255",
        "input_dtype": "float32",
        "output": "logits",
        "dataset": run["dataset"],
        "val_accuracy": f"{summary['best_val_accuracy']:.6f}",
        "val_top5_accuracy": f"{summary['best_val_top5']:.6f}",
        "training_config": json.dumps(run["train"], sort_keys=True),
        "git_revision": git_revision(),
        "producer": "training.export",
    }


def _max_logit_difference(model_bytes: bytes, core: Any, images: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    ours = session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
    keras_logits = core(images, training=False).numpy()
    return float(np.max(np.abs(ours - keras_logits)))


def export_run(
    run: str | Path,
    repository: str | Path = "models",
    name: str = "cifar10",
    version: int | None = None,
    *,
    tolerance: float = PARITY_TOLERANCE,
) -> tuple[Path, float]:
    """Export ``run``'s best weights; returns the written path and the parity difference."""
    run, repository = Path(run), Path(repository)
    try:
        record = json.loads((run / "config.json").read_text())
        summary = json.loads((run / "summary.json").read_text())
        images = np.load(run / "parity_images.npy").astype(np.float32)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{run} is not a finished training run: {exc}") from exc
    core = build_core(ModelConfig(**record["train"]["model"]))
    # The checkpoint holds the training model's weights, the core nested inside it.
    build_training_model(core).load_weights(run / "best.weights.h5")

    signature = (tf.TensorSpec((None, 32, 32, 3), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(core, input_signature=signature, opset=OPSET)
    if [o.name for o in proto.graph.output] != [OUTPUT_NAME]:
        raise ExportError(f"unexpected graph outputs {[o.name for o in proto.graph.output]}")
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.helper.set_model_props(proto, _metadata(record, summary))
    onnx.checker.check_model(proto)
    model_bytes = proto.SerializeToString()

    difference = _max_logit_difference(model_bytes, core, images)
    if not difference <= tolerance:
        raise ExportError(
            f"parity check failed: max |Δlogit| = {difference:.3g} between onnxruntime and Keras "
            f"on {len(images)} images exceeds {tolerance:g}; nothing was written"
        )
    version = next_version(repository, name) if version is None else version
    target = repository / name / str(version) / "model.onnx"
    _make_readable_folders(target.parent)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as staging:
        staging.write(model_bytes)
    # NamedTemporaryFile creates 0600: a server running as another user (a container's
    # non-root user, say) could not read the model.
    os.chmod(staging.name, FILE_MODE)
    os.replace(staging.name, target)  # never leave a half-written model for the server
    return target, difference


def _make_readable_folders(folder: Path) -> None:
    """Create ``folder`` (``<repository>/<name>/<version>``): it, its parent and any folder
    this creates end up ``FOLDER_MODE`` whatever the umask."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for path in {folder, folder.parent, *created}:
        os.chmod(path, FOLDER_MODE)
