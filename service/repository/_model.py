"""One served ONNX model: its spec (tensors, preprocessing, class names) and its session.

Everything is read from the file (input/output names, shapes, dtypes) and its metadata
(class names, layout, pixel range); nothing is assumed about the exporter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from service.batching import BatchingOptions
from service.calibration.file import Calibration
from service.errors import ModelLoadError

__all__ = ["LoadedModel", "ServedModel", "TensorSpec", "load_model"]

log = logging.getLogger(__name__)

ONNX_TYPES: dict[str, tuple[str, type[np.generic]]] = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(double)": ("FP64", np.float64),
    "tensor(uint8)": ("UINT8", np.uint8),
}
PIXEL_SCALES = {"0-255": 1.0, "0-1": 1.0 / 255.0}
"""Input pixel ranges a model may declare (``input_pixel_range`` metadata); requests are
always 0–255 pixel values and are scaled to what the model expects."""


@dataclass(frozen=True)
class TensorSpec:
    """A model tensor as the Open Inference Protocol describes it (−1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ServedModel:
    """What a served model version is: names, tensors, preprocessing, classes. Plain data, so
    that the serving process knows every model while only the model processes hold sessions."""

    name: str
    version: int
    path: Path
    input: TensorSpec
    output: TensorSpec
    layout: str
    image_shape: tuple[int, int, int]
    """Height, width, channels of one image."""
    input_dtype: type[np.generic]
    pixel_scale: float
    class_names: tuple[str, ...]
    metadata: dict[str, str]
    provider: str
    batching: BatchingOptions
    instance: int = 0
    """Which load of this version it is: a reload is a new instance beside the old one, so
    that the old can finish its batches while the new takes traffic."""
    calibration: Calibration | None = None
    """The version's ``calibration.json``: its softmax scores are served calibrated."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def key(self) -> tuple[str, int]:
        """Name and version: what identifies this model version."""
        return self.name, self.version


@dataclass(frozen=True)
class LoadedModel:
    """A model version with its onnxruntime session. :meth:`infer` maps 0–255 NHWC pixels to
    float32 logits."""

    spec: ServedModel
    session: ort.InferenceSession = field(repr=False)

    def prepare(self, images: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Images ``[N, H, W, C]`` of 0–255 pixel values (any numeric dtype) as the model's
        input tensor: scaled, laid out and typed as the model takes them."""
        spec = self.spec
        batch = images.astype(np.float32, copy=False)
        if spec.pixel_scale != 1.0:
            batch = batch * np.float32(spec.pixel_scale)
        if spec.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=spec.input_dtype)

    def run(self, prepared: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        """Logits ``[N, C]`` of an input tensor made by :meth:`prepare`."""
        spec = self.spec
        (logits,) = self.session.run([spec.output.name], {spec.input.name: prepared})
        return np.asarray(logits, dtype=np.float32)

    def infer(self, images: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        """Logits ``[N, C]`` for images ``[N, H, W, C]`` of 0–255 pixel values (any numeric
        dtype; converted to what the model takes here, on the calling thread)."""
        return self.run(self.prepare(images))

    def infer_parts(self, parts: Sequence[npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
        """Logits for several requests' images in one model run, rows in order."""
        return self.infer(parts[0] if len(parts) == 1 else np.concatenate(parts))


def _spec(node: Any, path: Path) -> tuple[TensorSpec, type[np.generic]]:
    if node.type not in ONNX_TYPES:
        raise ModelLoadError(f"{path}: tensor {node.name!r} has unsupported type {node.type}")
    datatype, dtype = ONNX_TYPES[node.type]
    shape = tuple(d if isinstance(d, int) else -1 for d in node.shape)
    return TensorSpec(node.name, datatype, shape), dtype


def _layout(spec: TensorSpec, declared: str | None, path: Path) -> tuple[str, tuple[int, int, int]]:
    if len(spec.shape) != 4:
        raise ModelLoadError(f"{path}: input {spec.name!r} must be a batch of images (rank 4)")
    _, a, b, c = spec.shape
    layout = declared or ("NHWC" if c in (1, 3) else "NCHW")
    if layout not in ("NHWC", "NCHW"):
        raise ModelLoadError(f"{path}: input_layout {layout!r} is neither NHWC nor NCHW")
    image = (a, b, c) if layout == "NHWC" else (b, c, a)
    if min(image) < 1:
        raise ModelLoadError(
            f"{path}: input {spec.name!r} needs a fixed image size, got {list(spec.shape)}"
        )
    return layout, image


def _class_names(metadata: dict[str, str], count: int, path: Path) -> tuple[str, ...]:
    raw = metadata.get("class_names")
    if raw is None:
        return tuple(f"class_{i}" for i in range(count))
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ModelLoadError(f"{path}: metadata class_names is not a JSON list of strings")
    if len(names) != count:
        raise ModelLoadError(f"{path}: {len(names)} class_names for {count} outputs")
    return tuple(names)


def load_model(
    name: str,
    version: int,
    path: Path,
    providers: list[str],
    options: ort.SessionOptions,
    batching: BatchingOptions,
    *,
    data: bytes | None = None,
    announce: bool = True,
) -> LoadedModel:
    """Open ``path`` (or the ONNX bytes ``data`` read from it elsewhere) with onnxruntime, read
    its specs and metadata, and run one warm-up inference. Any problem is a
    :class:`ModelLoadError` naming the file. ``announce``: log the loaded model at info level
    (a second copy of a model logs at debug level)."""
    try:
        session = ort.InferenceSession(
            str(path) if data is None else data, options, providers=providers
        )
    except Exception as exc:  # onnxruntime raises several types for unreadable files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: onnxruntime cannot load it: {reason}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: expected one image input, found {len(inputs)}")
    input_spec, input_dtype = _spec(inputs[0], path)
    chosen = next((o for o in outputs if o.name == "logits"), outputs[0])
    output_spec, _ = _spec(chosen, path)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    layout, image_shape = _layout(input_spec, metadata.get("input_layout"), path)
    pixel_range = metadata.get("input_pixel_range", "0-255")
    if pixel_range not in PIXEL_SCALES:
        raise ModelLoadError(f"{path}: input_pixel_range {pixel_range!r} is not one of 0-255, 0-1")

    spec = ServedModel(
        name, version, path, input_spec, output_spec, layout, image_shape, input_dtype,
        PIXEL_SCALES[pixel_range], (), metadata, session.get_providers()[0], batching,
    )  # fmt: skip
    try:
        warm = LoadedModel(spec, session).infer(np.zeros((1, *image_shape), dtype=np.float32))
    except Exception as exc:
        raise ModelLoadError(f"{path}: warm-up inference failed: {exc}") from exc
    if warm.ndim != 2:
        raise ModelLoadError(f"{path}: output {output_spec.name!r} must be [N, classes]")
    spec = replace(spec, class_names=_class_names(metadata, warm.shape[1], path))
    log.log(
        logging.INFO if announce else logging.DEBUG,
        "loaded %s version %d from %s on %s (%s %s -> %s, %d classes)",
        name, version, path, spec.provider, input_spec.name, list(input_spec.shape),
        output_spec.name, spec.num_classes,
    )  # fmt: skip
    return LoadedModel(spec, session)
