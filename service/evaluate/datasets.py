"""Labelled datasets read in row ranges: CIFAR-format batches, ``.npz`` files, image folders.

A dataset is named by a string (:class:`DatasetSpec`), which is all that travels to a worker:
each worker opens the dataset itself and reads only the rows of its chunks, so no process ever
holds more than a chunk (and one CIFAR batch file) of images.

* ``synthetic`` / ``synthetic:k=v,...`` / ``digits``: the generated stand-in and scikit-learn's
  digits, written in the CIFAR-10 format under ``data/`` on first use (every worker writes the
  same bytes); ``cifar10``: the real archive, searched where training searches it.
* a CIFAR-10 archive (``.tar.gz``) or ``cifar-10-batches-py`` folder, split ``test`` or
  ``train``;
* ``PATH.npz`` with ``images`` ``[N, H, W, C]`` uint8 and ``labels`` ``[N]`` (or ``x``/``y``),
  optionally ``class_names``;
* a folder of ``<class name>/*.png|jpg`` (see :mod:`service.evaluate.files`).
"""

from __future__ import annotations

import itertools
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from service.evaluate.errors import EvaluationError

__all__ = ["Batch", "Dataset", "DatasetSpec"]

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.int64]
Batch = tuple[Images, Labels]
Split = Literal["test", "train"]
READ_ERRORS = (OSError, EOFError, ValueError, tarfile.TarError, zipfile.BadZipFile, zlib.error)
"""What reading a damaged file raises (truncated, corrupt, not what it claims to be)."""
FORMS = (
    "synthetic[:k=v,...], digits, cifar10, a CIFAR-10 archive or folder, an .npz of images "
    "and labels, or a folder of <class>/*.png"
)


class Dataset(Protocol):
    """Rows ``0..size`` of images ``[H, W, C]`` uint8 with class ids."""

    @property
    def name(self) -> str:
        """What the data is: ``cifar10``, ``synthetic``, ``sklearn-digits``, ``npz``,
        ``folder``."""
        ...

    @property
    def source(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Class names the dataset itself carries, by class id (``None``: the model's)."""
        ...

    def segments(self) -> list[tuple[int, int]]:
        """Row ranges a chunk should not cross (one per file where files hold rows)."""
        ...

    def read(self, start: int, stop: int) -> Batch:
        """Images and labels of rows ``start..stop``."""
        ...

    def close(self) -> None:
        """Release open files."""
        ...


@dataclass(frozen=True)
class DatasetSpec:
    """Which dataset and split: everything a worker needs to open it."""

    dataset: str
    split: Split = "test"
    data_root: str = "data"
    """Where generated datasets (synthetic, digits) are written."""


class CifarBatches:
    """The CIFAR-10 on-disk format (folder or ``.tar.gz``): one pickled batch per file."""

    def __init__(self, path: Path, split: Split) -> None:
        from training.data import META, TEST_BATCH, TRAIN_BATCHES, parse_batch, parse_meta

        self.path, self.source = path, str(path)
        self._files = list(TRAIN_BATCHES) if split == "train" else [TEST_BATCH]
        self._read_batch = parse_batch
        self._archive = path if path.is_file() else None
        self._cached: tuple[str, Batch] | None = None
        self.class_names, self.name, _ = parse_meta(self._raw(META))
        # One pass over the files to count their rows (labels only are kept).
        self._labels = [self._load(name)[1] for name in self._files]
        self._cached = None
        ends = np.cumsum([0, *(len(labels) for labels in self._labels)]).tolist()
        self._bounds = list(itertools.pairwise(ends))
        self.size = int(ends[-1])

    def _raw(self, name: str) -> bytes:
        from training.data import FOLDER_NAME

        if self._archive is None:
            return (self.path / name).read_bytes()
        with tarfile.open(self._archive, "r:gz") as archive:
            for member in archive:  # sequential: stops at the file it needs
                if member.isfile() and member.name.endswith(f"{FOLDER_NAME}/{name}"):
                    return archive.extractfile(member).read()  # type: ignore[union-attr]
        raise EvaluationError(f"{self._archive} has no {FOLDER_NAME}/{name}")

    def _load(self, name: str) -> Batch:
        if self._cached is None or self._cached[0] != name:
            self._cached = (name, self._read_batch(self._raw(name), name))
        return self._cached[1]

    def segments(self) -> list[tuple[int, int]]:
        return list(self._bounds)

    def close(self) -> None:
        self._cached = None

    def read(self, start: int, stop: int) -> Batch:
        for name, (first, last) in zip(self._files, self._bounds, strict=True):
            if first <= start < last:
                if stop > last:
                    raise ValueError(f"rows {start}..{stop} cross the end of {name}")
                images, labels = self._load(name)
                return images[start - first : stop - first], labels[start - first : stop - first]
        raise ValueError(f"rows {start}..{stop} are outside 0..{self.size}")


def cifar_path(spec: DatasetSpec) -> Path | None:
    from training.data import DatasetError, locate_cifar10
    from training.datasets import dataset_folder, is_generated

    text = spec.dataset
    try:
        if is_generated(text) or text == "cifar10":
            try:
                return dataset_folder(text, root=Path(spec.data_root))
            except ImportError:  # digits are written from scikit-learn's copy on first use
                from service.evaluate.extras import require

                require("sklearn.datasets", f"the {text} dataset")  # the clear error, if that
                raise
        path = Path(text)
        if not path.exists():
            raise EvaluationError(f"{text}: no such dataset (expected {FORMS})")
        if path.suffix == ".npz" or (path.is_dir() and not _looks_cifar(path)):
            return None
        return locate_cifar10(path)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None


def _looks_cifar(path: Path) -> bool:
    from training.data import ARCHIVE_NAMES, FOLDER_NAME, META

    return any((path / name).exists() for name in (META, FOLDER_NAME, *ARCHIVE_NAMES))


def check_labels(labels: Labels, classes: int, where: str, first_row: int = 0) -> None:
    """Class ids must lie in ``0..classes`` (rows are numbered from ``first_row``)."""
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise EvaluationError(
            f"{where}: label {int(labels[bad[0]])} at row {first_row + int(bad[0])} is not a "
            f"class id in 0..{classes - 1}"
        )


def as_batch(images: Any, labels: Any, where: str) -> Batch:
    """Images ``[N, H, W, C]`` uint8 and labels ``[N]`` int64, or an error naming ``where``."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise EvaluationError(
            f"{where}: images must be uint8 [N, H, W, C], got {images.dtype} {list(images.shape)}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise EvaluationError(f"{where}: labels must be integer class ids [N], got {labels.dtype}")
    if len(images) != len(labels):
        raise EvaluationError(f"{where}: {len(images)} images but {len(labels)} labels")
    return images, labels.astype(np.int64)
