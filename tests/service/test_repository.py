"""The model repository: discovery, versions, specs read from the file, and load failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import InvalidInputError, ModelLoadError, NotFoundError
from service.repository import ModelRepository
from tests.service.conftest import CLASSES
from tests.service.onnx_models import LinearModel, write_linear_model


def _load(path: Path, device: str = "cpu") -> ModelRepository:
    return ModelRepository.load(path, device=device, intra_op_threads=1)


def test_versions_and_latest(plane_repository: ModelRepository) -> None:
    assert plane_repository.names() == ["cifar10", "xy"]
    assert plane_repository.versions("cifar10") == [1, 2]
    assert plane_repository.get("cifar10").version == 2
    assert plane_repository.get("cifar10", "1").version == 1
    assert plane_repository.get("cifar10", 1).version == 1


def test_specs_come_from_the_file(plane_repository: ModelRepository) -> None:
    default = plane_repository.get("cifar10")
    assert (default.input.name, default.output.name) == ("images", "logits")
    assert default.input.shape == (-1, 32, 32, 3)
    assert default.class_names == tuple(CLASSES)
    other = plane_repository.get("xy")
    assert (other.input.name, other.output.name) == ("x", "y")
    assert other.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert other.provider == "CPUExecutionProvider"


def test_inference_matches_the_model_math(
    plane_repository: ModelRepository, references: dict[tuple[str, int], LinearModel]
) -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    for (name, version), reference in references.items():
        logits = plane_repository.get(name, version).infer(images)
        np.testing.assert_allclose(logits, reference.logits(images), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "version", "error", "message"),
    [
        ("nope", None, NotFoundError, r"model 'nope' is not served \(available: cifar10, xy\)"),
        ("cifar10", "7", NotFoundError, r"has no version 7 \(available: 1, 2\)"),
        ("cifar10", "latest", InvalidInputError, "version must be a whole number"),
        (None, None, InvalidInputError, "model is required when several are served"),
    ],
)
def test_lookup_errors(
    plane_repository: ModelRepository,
    name: str | None,
    version: str | None,
    error: type,
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        plane_repository.get(name, version)


def test_single_model_is_the_default(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "only" / "3" / "model.onnx")
    assert _load(tmp_path).get().name == "only"


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"does not exist.*quickstart-model"):
        _load(tmp_path / "absent")


def test_empty_repository(tmp_path: Path) -> None:
    (tmp_path / "cifar10" / "notaversion").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="holds no model"):
        _load(tmp_path)


def test_corrupt_model_file(tmp_path: Path) -> None:
    target = tmp_path / "broken" / "1" / "model.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match=r"broken/1/model.onnx: onnxruntime cannot load it"):
        _load(tmp_path)


def test_class_names_must_match_outputs(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx", classes=3, class_names=["a", "b"])
    with pytest.raises(ModelLoadError, match="2 class_names for 3 outputs"):
        _load(tmp_path)


def test_cuda_without_a_cuda_build(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    with pytest.raises(ModelLoadError, match="--device cuda was asked for"):
        _load(tmp_path, device="cuda")
    assert _load(tmp_path, device="auto").get().provider == "CPUExecutionProvider"
