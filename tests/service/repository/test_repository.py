"""The model repository: discovery, versions, specs read from the file, per-model batching
options, and load failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.batching import BatchingOptions
from service.errors import InvalidInputError, ModelLoadError, NotFoundError
from service.repository import (
    CONFIG_FILE,
    LoadedModel,
    ModelRepository,
    ServedModel,
    discover,
    load_model,
    read_model_config,
)
from service.repository._runtime import providers_for, session_options
from tests.service.helpers import CLASSES
from tests.service.onnx_models import LinearModel, write_linear_model


def _loaded(path: Path, device: str = "cpu", **batching: object) -> list[LoadedModel]:
    """Every version found, loaded as a model process loads it, with its model's options."""
    defaults = BatchingOptions.model_validate(batching)
    providers, options = providers_for(device), session_options(1)
    loaded = []
    for name, versions in discover(path).items():
        config = read_model_config(defaults, path / name / CONFIG_FILE)
        for version, file in versions.items():
            loaded.append(load_model(name, version, file, providers, options, config.batching))
    return loaded


def _load(path: Path, device: str = "cpu") -> ModelRepository:
    found: dict[str, list[ServedModel]] = {}
    for model in _loaded(path, device):
        found.setdefault(model.spec.name, []).append(model.spec)
    return ModelRepository(found)


@pytest.fixture(scope="module")
def plane_repository(repository_path: Path) -> ModelRepository:
    return _load(repository_path)


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
    repository_path: Path, references: dict[tuple[str, int], LinearModel]
) -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    loaded = {model.spec.key: model for model in _loaded(repository_path)}
    for key, reference in references.items():
        logits = loaded[key].infer(images)
        np.testing.assert_allclose(logits, reference.logits(images), rtol=1e-5, atol=1e-5)
        parts = loaded[key].infer_parts([images[:1], images[1:].astype(np.float32)])
        np.testing.assert_array_equal(parts, logits)


@pytest.mark.parametrize(
    ("name", "version", "error", "message"),
    [
        ("nope", None, NotFoundError, r"model 'nope' is not served \(available: cifar10, xy\)"),
        ("cifar10", "7", NotFoundError, r"has no version 7 ready \(ready: 1, 2\)"),
        ("cifar10", "canary", NotFoundError, r"no label 'canary' on a ready version"),
        ("cifar10", "1.5", InvalidInputError, "version must be a whole number or a label"),
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


def test_batching_options_per_model(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tuned" / "1" / "model.onnx")
    write_linear_model(tmp_path / "plain" / "1" / "model.onnx")
    (tmp_path / "tuned" / "config.json").write_text('{"max_batch_size": 8, "batching": false}')
    models = {m.spec.name: m.spec.batching for m in _loaded(tmp_path, max_queue_size=7)}
    assert models["tuned"] == BatchingOptions(
        batching=False, max_batch_size=8, max_queue_delay_ms=0, max_queue_size=7
    )
    assert models["plain"].max_queue_size == 7
    assert models["plain"].max_batch_size == BatchingOptions.model_fields["max_batch_size"].default


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"max_batch_size": 0}', "max_batch_size: Input should be greater than or equal to 1"),
        ('{"max_batchsize": 8}', "max_batchsize: Extra inputs are not permitted"),
        ("[1]", "not a JSON object of model settings"),
        ("{", "not a JSON object"),
        ('{"version_policy": {"latest": 0}}', "version_policy must be"),
        ('{"labels": {"9lives": 1}}', "must start with a letter"),
        ('{"labels": {"stable": "one"}}', "must name a version number"),
    ],
)
def test_invalid_model_config(tmp_path: Path, config: str, message: str) -> None:
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    (tmp_path / "m" / "config.json").write_text(config)
    with pytest.raises(ModelLoadError, match=f"m/config.json: .*{message}"):
        _loaded(tmp_path)
