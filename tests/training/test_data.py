"""The CIFAR-10 loader, on archives and folders written in the official format."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from training.data import (
    CIFAR10_MD5,
    DatasetError,
    load_cifar10,
    locate_cifar10,
    missing_data_message,
)
from training.synthetic import CLASS_NAMES, write_synthetic_cifar10


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cifar10(
        tmp_path_factory.mktemp("synthetic"), train_per_batch=30, test_size=20, seed=3
    )


def _archive(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return target


def test_folder_loads_in_cifar_layout(folder: Path) -> None:
    data = load_cifar10(folder)
    assert data.x_train.shape == (150, 32, 32, 3)
    assert data.x_train.dtype == np.uint8
    assert data.x_test.shape == (20, 32, 32, 3)
    assert data.class_names == CLASS_NAMES
    assert data.name == "synthetic"
    assert set(np.unique(data.y_train)) == set(range(10))


def test_pixels_follow_the_plane_layout(folder: Path) -> None:
    """CIFAR rows hold the R plane, then G, then B; the loader must give NHWC."""
    batch = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    red_plane = batch[b"data"][0, :1024].reshape(32, 32)
    np.testing.assert_array_equal(load_cifar10(folder).x_train[0, :, :, 0], red_plane)


def test_archive_equals_folder(folder: Path, tmp_path: Path) -> None:
    archive = _archive(folder, tmp_path / "cifar-10-python.tar.gz")
    from_archive = load_cifar10(archive, expected_md5=None)
    from_folder = load_cifar10(folder)
    np.testing.assert_array_equal(from_archive.x_train, from_folder.x_train)
    np.testing.assert_array_equal(from_archive.y_test, from_folder.y_test)


def test_archive_checksum_is_verified(folder: Path, tmp_path: Path) -> None:
    archive = _archive(folder, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DatasetError, match=f"does not match the published {CIFAR10_MD5}"):
        load_cifar10(archive)


def test_truncated_archive_is_reported(folder: Path, tmp_path: Path) -> None:
    archive = _archive(folder, tmp_path / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_cifar10(archive, expected_md5=None)


def test_corrupt_batch_is_reported(folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cifar-10-batches-py"
    broken.mkdir()
    for item in folder.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "data_batch_3").write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3 is not a valid CIFAR-10 batch"):
        load_cifar10(broken)


def test_a_pickle_that_would_run_code_is_refused(folder: Path, tmp_path: Path) -> None:
    evil = tmp_path / "cifar-10-batches-py"
    evil.mkdir()
    for item in folder.iterdir():
        (evil / item.name).write_bytes(item.read_bytes())

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("owned",))

    (evil / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DatasetError, match=r"unexpected object (__builtin__|builtins)\.print"):
        load_cifar10(evil)


def test_synthetic_is_deterministic(tmp_path: Path) -> None:
    first = write_synthetic_cifar10(tmp_path / "a", train_per_batch=10, test_size=10, seed=1)
    second = write_synthetic_cifar10(tmp_path / "b", train_per_batch=10, test_size=10, seed=1)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_lookup_order(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".keras" / "datasets").mkdir(parents=True)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert locate_cifar10() is None

    cached = _archive(folder, home / ".keras" / "datasets" / "cifar-10-batches-py.tar.gz")
    assert locate_cifar10() == cached

    (work / "data").mkdir()
    local = _archive(folder, work / "data" / "cifar-10-python.tar.gz")
    assert locate_cifar10() == Path("data") / local.name

    assert locate_cifar10(folder) == folder
    assert locate_cifar10(folder.parent) == folder


def test_missing_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"cifar-10-python\.tar\.gz.*\./data/"):
        locate_cifar10(tmp_path)
    assert "Nothing is downloaded" in missing_data_message()
