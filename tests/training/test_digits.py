"""scikit-learn's handwritten digits, written in the CIFAR-10 format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from training.data import Cifar10, load_cifar10, read_meta
from training.datasets import dataset_folder, is_generated
from training.digits import CLASS_NAMES, write_digits_cifar10


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits_cifar10(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def digits(folder: Path) -> Cifar10:
    return load_cifar10(folder)


def _source_indices(folder: Path, name: str) -> list[int]:
    batch = pickle.loads((folder / name).read_bytes(), encoding="bytes")
    return [int(f.decode().removesuffix(".png").rsplit("_", 1)[1]) for f in batch[b"filenames"]]


def test_written_under_root_digits_in_the_cifar_layout(folder: Path) -> None:
    assert folder.parts[-2:] == ("digits", "cifar-10-batches-py")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batches.meta", *[f"data_batch_{i}" for i in range(1, 6)], "test_batch"]


def test_shapes_dtype_and_pixel_range(digits: Cifar10) -> None:
    assert digits.x_train.shape == (1438, 32, 32, 3)
    assert digits.x_test.shape == (359, 32, 32, 3)
    assert digits.x_train.dtype == np.uint8
    assert digits.x_train.min() == 0
    assert digits.x_train.max() == 255
    # Grey: three identical channels.
    np.testing.assert_array_equal(digits.x_train[..., 0], digits.x_train[..., 2])
    np.testing.assert_array_equal(digits.x_test[..., 1], digits.x_test[..., 2])


def test_named_sklearn_digits_with_digit_classes(digits: Cifar10, folder: Path) -> None:
    assert digits.name == "sklearn-digits"
    assert digits.class_names == CLASS_NAMES == tuple("0123456789")
    meta = read_meta(folder)
    assert meta is not None
    assert meta[b"dataset"] == b"sklearn-digits"
    assert digits.parameters["test_fraction"] == 0.2
    assert digits.parameters["seed"] == 0


def test_the_split_is_stratified_and_disjoint(digits: Cifar10, folder: Path) -> None:
    source = load_digits().target
    per_class = np.bincount(source, minlength=10)
    np.testing.assert_array_equal(
        np.bincount(digits.y_test, minlength=10), np.round(0.2 * per_class)
    )
    np.testing.assert_array_equal(
        np.bincount(digits.y_train, minlength=10), per_class - np.round(0.2 * per_class)
    )
    train = [i for b in range(1, 6) for i in _source_indices(folder, f"data_batch_{b}")]
    test = _source_indices(folder, "test_batch")
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(len(source)))
    np.testing.assert_array_equal(digits.y_test, source[test])


def test_the_images_are_the_upsampled_digits(digits: Cifar10, folder: Path) -> None:
    """Averaging each 4x4 block gives back the 8x8 original (up to the bilinear smoothing)."""
    source = load_digits().images * (255 / 16)
    test = _source_indices(folder, "test_batch")
    blocks = digits.x_test[..., 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4))
    correlation = np.corrcoef(blocks.ravel(), source[test].ravel())[0, 1]
    assert correlation > 0.95


def test_the_same_arguments_write_the_same_bytes(folder: Path, tmp_path: Path) -> None:
    again = write_digits_cifar10(tmp_path)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        assert (again / name).read_bytes() == (folder / name).read_bytes()
    other = write_digits_cifar10(tmp_path / "other", seed=1)
    assert (other / "test_batch").read_bytes() != (folder / "test_batch").read_bytes()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_the_test_fraction_must_be_a_fraction(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(ValueError, match="expected a fraction between 0 and 1"):
        write_digits_cifar10(tmp_path, test_fraction=fraction)


def test_the_resolver_writes_digits_once(tmp_path: Path) -> None:
    assert is_generated("digits")
    folder = dataset_folder("digits", root=tmp_path)
    assert folder == tmp_path / "digits" / "cifar-10-batches-py"
    written = (folder / "test_batch").stat().st_mtime_ns
    assert dataset_folder("digits", root=tmp_path) == folder
    assert (folder / "test_batch").stat().st_mtime_ns == written
    assert load_cifar10(folder).name == "sklearn-digits"
