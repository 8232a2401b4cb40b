"""Every dataset form gives the same rows: CIFAR folder and archive, .npz, image folders."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.evaluate.datasets import DatasetSpec
from service.evaluate.errors import EvaluationError
from service.evaluate.files import open_dataset
from service.evaluate.local_engine import LocalEngine
from service.evaluate.runner import evaluate
from tests.service.evaluate.conftest import make_job
from tests.service.helpers import CLASSES

SHAPE = (32, 32, 3)


def _rows(spec: str | Path, classes=CLASSES) -> tuple[np.ndarray, np.ndarray]:
    dataset = open_dataset(DatasetSpec(str(spec)), classes, SHAPE)
    parts = [dataset.read(start, stop) for start, stop in dataset.segments()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_archive_reads_as_the_folder(cifar_folder: Path, arrays, tmp_path: Path) -> None:
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_folder, arcname=cifar_folder.name)
    images, labels = _rows(archive)
    np.testing.assert_array_equal(images, arrays[0])
    np.testing.assert_array_equal(labels, arrays[1])


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_reads_rows_in_ranges(save, arrays, tmp_path: Path) -> None:
    path = tmp_path / "set.npz"
    save(path, images=arrays[0], labels=arrays[1], class_names=np.array(CLASSES))
    dataset = open_dataset(DatasetSpec(str(path)), CLASSES, SHAPE)
    assert dataset.size == len(arrays[1])
    assert dataset.class_names == tuple(CLASSES)
    images, labels = dataset.read(123, 321)
    np.testing.assert_array_equal(images, arrays[0][123:321])
    np.testing.assert_array_equal(labels, arrays[1][123:321])


def test_npz_with_x_and_y_evaluates_as_the_cifar_folder(
    repository: Path, cifar_folder: Path, arrays, tmp_path: Path
) -> None:
    path = tmp_path / "xy.npz"
    np.savez(path, x=arrays[0], y=arrays[1].astype(np.int32))
    from_npz = evaluate(make_job(repository, path), LocalEngine(1), chunk_size=100)
    from_cifar = evaluate(make_job(repository, cifar_folder), LocalEngine(1), chunk_size=100)
    np.testing.assert_array_equal(from_npz.tally.confusion, from_cifar.tally.confusion)
    assert from_npz.loss_value == pytest.approx(from_cifar.loss_value, rel=1e-6)
    assert from_npz.dataset["name"] == "npz"


def _write_tree(root: Path, images: np.ndarray, labels: np.ndarray, names) -> None:
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:05d}.png")


def _subset(arrays, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isin(arrays[1], classes)
    return arrays[0][keep][:40], arrays[1][keep][:40]


def test_folders_named_after_the_models_classes(arrays, tmp_path: Path) -> None:
    # Two of the model's classes only: their ids are the model's (7, 3), not the folders'
    # sorted positions (0, 1).
    images, labels = _subset(arrays, (3, 7))
    _write_tree(tmp_path, images, labels, CLASSES)
    dataset = open_dataset(DatasetSpec(str(tmp_path)), CLASSES, SHAPE)
    read_images, read_labels = dataset.read(0, dataset.size)
    order = np.lexsort((np.arange(len(labels)), labels))  # by class folder, then file name
    np.testing.assert_array_equal(read_labels, labels[order])
    np.testing.assert_array_equal(read_images, images[order])
    assert dataset.class_names == tuple(CLASSES)
    assert dataset.note == ""  # type: ignore[attr-defined]


def test_integer_folders_are_class_ids(arrays, tmp_path: Path) -> None:
    # "2" and "9" sort as positions 0 and 1; their ids are 2 and 9.
    images, labels = _subset(arrays, (2, 9))
    _write_tree(tmp_path, images, labels, [str(i) for i in range(10)])
    dataset = open_dataset(DatasetSpec(str(tmp_path)), CLASSES, SHAPE)
    _, read_labels = dataset.read(0, dataset.size)
    assert set(read_labels.tolist()) == {2, 9}
    np.testing.assert_array_equal(np.sort(read_labels), np.sort(labels))
    assert dataset.note == ""  # type: ignore[attr-defined]


def test_other_folder_names_take_sorted_order_and_say_so(arrays, tmp_path: Path) -> None:
    names = ["zebra", "apple", "mango", "kiwi", "fig", "lime", "pear", "plum", "date", "yam"]
    _write_tree(tmp_path, arrays[0][:40], arrays[1][:40], names)
    dataset = open_dataset(DatasetSpec(str(tmp_path)), CLASSES, SHAPE)
    present = sorted({names[label] for label in arrays[1][:40]})
    assert dataset.class_names is not None
    assert dataset.class_names[: len(present)] == tuple(present)
    assert len(dataset.class_names) == len(CLASSES)  # classes no folder holds keep a name
    assert "sorted order" in dataset.note  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda p: np.savez(p / "a.npz", pictures=np.zeros((2, 32, 32, 3), np.uint8)),
            "expected arrays 'images' and 'labels'",
        ),
        (
            lambda p: np.savez(p / "a.npz", images=np.zeros((2, 32, 32, 3), np.uint8), labels=[1]),
            "2 images but 1 labels",
        ),
        (
            lambda p: np.savez(
                p / "a.npz", images=np.zeros((2, 32, 32, 3), np.float32), labels=[1, 2]
            ),
            "images must be uint8",
        ),
        (lambda p: (p / "a.npz").write_bytes(b"not a zip"), "not a readable .npz"),
    ],
)
def test_malformed_npz_is_refused_with_the_reason(build, message: str, tmp_path: Path) -> None:
    build(tmp_path)
    with pytest.raises(EvaluationError, match=message):
        open_dataset(DatasetSpec(str(tmp_path / "a.npz")), CLASSES, SHAPE)


def test_missing_path_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no such dataset"):
        open_dataset(DatasetSpec(str(tmp_path / "absent")), CLASSES, SHAPE)
    (tmp_path / "cat").mkdir()
    with pytest.raises(EvaluationError, match="no <class>/"):
        open_dataset(DatasetSpec(str(tmp_path)), CLASSES, SHAPE)


def test_wrong_image_size_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "thing-1").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "thing-1" / "small.png")
    dataset = open_dataset(DatasetSpec(str(tmp_path)), CLASSES, SHAPE)
    with pytest.raises(EvaluationError, match=r"small\.png: expected a 32x32 RGB PNG"):
        dataset.read(0, 1)
