"""CIFAR-10 from the official Python archive (or its extracted folder), offline only.

The loader reads the published on-disk format: pickled ``data_batch_1..5``, ``test_batch``
and ``batches.meta`` under ``cifar-10-batches-py/``, either extracted or inside
``cifar-10-python.tar.gz`` (whose published MD5 is verified). The synthetic dataset of
:mod:`training.synthetic` and the scikit-learn digits of :mod:`training.digits` are written in
the same format, with their name under ``dataset`` (and how they were made under
``parameters``) in ``batches.meta``, so this loader is what reads them too. Nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "ARCHIVE_NAMES",
    "CIFAR10_MD5",
    "FOLDER_NAME",
    "Cifar10",
    "DatasetError",
    "cifar_batch",
    "load_cifar10",
    "locate_cifar10",
    "missing_data_message",
    "parse_batch",
    "parse_meta",
    "read_meta",
]

CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
"""Published MD5 of ``cifar-10-python.tar.gz``."""
FOLDER_NAME = "cifar-10-batches-py"
ARCHIVE_NAMES = ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz")
"""The official archive's name, and the name the Keras cache stores it under."""
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"


class DatasetError(Exception):
    """The dataset is missing, corrupt, or not in the CIFAR-10 format."""


@dataclass(frozen=True)
class Cifar10:
    """CIFAR-10 (or a dataset in its format) as NHWC uint8 images and int64 labels."""

    x_train: npt.NDArray[np.uint8]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.uint8]
    y_test: npt.NDArray[np.int64]
    class_names: tuple[str, ...]
    name: str
    """The ``dataset`` that ``batches.meta`` names (``"synthetic"`` for the generated stand-in,
    ``"sklearn-digits"`` for scikit-learn's digits), ``"cifar10"`` when it names none, as the
    official archive does."""
    source: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    """How a generated dataset was made (``batches.meta``'s ``parameters``: the synthetic
    difficulty, the digits split); empty for the real CIFAR-10."""


def default_search_paths() -> list[Path]:
    """Where the data is looked for after ``--data``: ``./data/``, then the Keras cache."""
    return [Path("data"), Path.home() / ".keras" / "datasets"]


def _candidate(path: Path) -> Path | None:
    if path.is_dir() and (path / META).is_file():
        return path
    if path.is_file() and path.name.endswith(".tar.gz"):
        return path
    if path.is_dir():
        for name in (FOLDER_NAME, *ARCHIVE_NAMES):
            found = _candidate(path / name) if (path / name).exists() else None
            if found:
                return found
    return None


def locate_cifar10(data: str | Path | None = None) -> Path | None:
    """The extracted folder or archive to load: ``data`` if given (which must be valid), else
    the first found in :func:`default_search_paths`; ``None`` when there is none."""
    if data is not None:
        found = _candidate(Path(data))
        if found is None:
            raise DatasetError(
                f"{data}: no CIFAR-10 archive or folder here.\n{missing_data_message()}"
            )
        return found
    for base in default_search_paths():
        found = _candidate(base)
        if found:
            return found
    return None


def missing_data_message() -> str:
    """Exactly where to put the real dataset."""
    return (
        "Put the official CIFAR-10 Python archive (cifar-10-python.tar.gz, "
        f"MD5 {CIFAR10_MD5}) or its extracted {FOLDER_NAME}/ folder in ./data/ "
        "(or ~/.keras/datasets/), or pass --data PATH. Nothing is downloaded."
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the batches' dicts of lists and numpy arrays and refuses anything else, so a
    tampered file cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def _unpickle(raw: bytes, name: str) -> dict[bytes, Any]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any failure means the file is not a CIFAR batch
        raise DatasetError(f"{name} is not a valid CIFAR-10 batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{name} is not a valid CIFAR-10 batch")
    return batch


def _images_and_labels(
    batch: dict[bytes, Any], name: str
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{name} does not hold 32x32 RGB images with labels: {exc}") from exc
    if len(images) != len(labels):
        raise DatasetError(f"{name} has {len(images)} images but {len(labels)} labels")
    return np.ascontiguousarray(images), labels


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_reader(path: Path, expected_md5: str | None) -> Callable[[str], bytes]:
    if expected_md5 is not None:
        actual = _md5(path)
        if actual != expected_md5:
            raise DatasetError(
                f"{path}: MD5 {actual} does not match the published {expected_md5}; "
                "the archive is corrupt, truncated or not the official one"
            )
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = {
                Path(m.name).name: archive.extractfile(m).read()  # type: ignore[union-attr]
                for m in archive.getmembers()
                if m.isfile() and Path(m.name).parent.name == FOLDER_NAME
            }
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path} is corrupt or truncated: {exc}") from exc

    def read(name: str) -> bytes:
        if name not in members:
            raise DatasetError(f"{path} has no {FOLDER_NAME}/{name}")
        return members[name]

    return read


def _folder_reader(path: Path) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        try:
            return (path / name).read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path / name} cannot be read: {exc}") from exc

    return read


def read_meta(folder: str | Path) -> dict[bytes, Any] | None:
    """The ``batches.meta`` of an extracted folder, or ``None`` when it has none or it is
    unreadable (for cache checks; :func:`load_cifar10` reports what is wrong)."""
    try:
        return _unpickle((Path(folder) / META).read_bytes(), META)
    except (OSError, DatasetError):
        return None


def _parameters(meta: dict[bytes, Any]) -> dict[str, Any]:
    parameters = meta.get(b"parameters", {})
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        raise DatasetError(f"{META} has parameters that are not a dict keyed by names")
    return parameters


def _dataset_name(meta: dict[bytes, Any]) -> str:
    name = meta.get(b"dataset", b"cifar10")
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    if not isinstance(name, str) or not name:
        raise DatasetError(f"{META} has a dataset name that is not text: {name!r}")
    return name


def parse_batch(raw: bytes, name: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The images ``[N, 32, 32, 3]`` and labels of one pickled batch file's bytes."""
    return _images_and_labels(_unpickle(raw, name), name)


def cifar_batch(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], name: str, filenames: list[str]
) -> dict[bytes, object]:
    """One batch file's content in the CIFAR-10 format, for ``pickle.dumps`` (the inverse of
    :func:`parse_batch`): images ``[N, 32, 32, 3]``, labels ``[N]``."""
    return {
        b"batch_label": name.encode(),
        b"labels": labels.tolist(),
        # CIFAR stores each image as its R, G and B planes, 1024 bytes each.
        b"data": images.transpose(0, 3, 1, 2).reshape(len(labels), 3072),
        b"filenames": [f.encode() for f in filenames],
    }


def parse_meta(raw: bytes) -> tuple[tuple[str, ...], str, dict[str, Any]]:
    """``batches.meta``'s class names, dataset name and generation parameters."""
    meta = _unpickle(raw, META)
    try:
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"])
    except KeyError as exc:
        raise DatasetError(f"{META} has no label_names") from exc
    return names, _dataset_name(meta), _parameters(meta)


def load_cifar10(path: str | Path, *, expected_md5: str | None = CIFAR10_MD5) -> Cifar10:
    """Load an extracted ``cifar-10-batches-py`` folder or a ``.tar.gz`` archive of it.

    ``expected_md5`` is checked for archives (pass ``None`` for an archive you made yourself).
    Raises :class:`DatasetError` with the reason when anything is missing or malformed.
    """
    path = Path(path)
    read = _folder_reader(path) if path.is_dir() else _archive_reader(path, expected_md5)
    class_names, name, parameters = parse_meta(read(META))
    train = [parse_batch(read(b), b) for b in TRAIN_BATCHES]
    x_test, y_test = parse_batch(read(TEST_BATCH), TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    for split, labels in (("train", y_train), ("test", y_test)):
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise DatasetError(f"{split} labels fall outside the {len(class_names)} classes")
    return Cifar10(x_train, y_train, x_test, y_test, class_names, name, path, parameters)
