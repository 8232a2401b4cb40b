"""Datasets of the user's own files: an ``.npz`` of arrays, or a folder of class folders."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInputError
from service.evaluate.datasets import (
    FORMS,
    READ_ERRORS,
    Batch,
    CifarBatches,
    Dataset,
    DatasetSpec,
    as_batch,
    cifar_path,
)
from service.evaluate.errors import EvaluationError

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "NpzFile", "open_dataset"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_KEYS, LABEL_KEYS = ("images", "x"), ("labels", "y")


class NpzFile:
    """``images`` ``[N, H, W, C]`` uint8 and ``labels`` ``[N]`` in an ``.npz`` (``np.savez``).

    Rows are read a range at a time: straight from their place in the file when the member is
    stored (``np.savez``), or by decompressing forward through it (``np.savez_compressed``;
    each worker's chunks come in increasing order, so each pass is sequential). Labels
    (8 bytes a row) are read whole.
    """

    name = "npz"

    def __init__(self, path: Path) -> None:
        self.path, self.source = path, str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise EvaluationError(f"{path}: not a readable .npz ({exc})") from None
        self._stream: IO[bytes] | None = None
        try:
            self._open()
        except BaseException:
            self._zip.close()
            raise

    def _open(self) -> None:
        path = self.path
        members = {Path(n).stem: n for n in self._zip.namelist() if n.endswith(".npy")}
        image_key = next((k for k in IMAGE_KEYS if k in members), None)
        label_key = next((k for k in LABEL_KEYS if k in members), None)
        if image_key is None or label_key is None:
            raise EvaluationError(
                f"{path}: expected arrays 'images' and 'labels' (or 'x' and 'y'), found "
                f"{', '.join(sorted(members)) or 'none'}"
            )
        labels = self._array(members[label_key])
        self._member = self._zip.getinfo(members[image_key])
        with self._zip.open(self._member) as stream:
            shape, dtype, self._offset = self._header(stream)
        self._row_shape = tuple(shape[1:])
        self._row_bytes = int(np.prod(self._row_shape))
        as_batch(np.zeros((0, *self._row_shape), dtype), labels[:0], self.source)
        if shape[0] != len(labels):
            raise EvaluationError(f"{path}: {shape[0]} images but {len(labels)} labels")
        self._labels = labels.astype(np.int64)
        self.size = len(labels)
        self.class_names: tuple[str, ...] | None = None
        if "class_names" in members:
            self.class_names = tuple(str(n) for n in self._array(members["class_names"]))
        if self._member.compress_type == zipfile.ZIP_STORED:
            self._offset += self._data_start()

    def _array(self, member: str) -> npt.NDArray[Any]:
        with self._zip.open(member) as stream:
            try:
                return np.lib.format.read_array(stream, allow_pickle=False)
            except ValueError as exc:
                raise EvaluationError(f"{self.source}: {member}: {exc}") from None

    def _header(self, stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[np.generic], int]:
        version = np.lib.format.read_magic(stream)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise EvaluationError(f"{self.source}: unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(stream)
        if fortran:
            raise EvaluationError(f"{self.source}: images must be stored in C order")
        return tuple(shape), dtype, stream.tell()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._zip.close()

    def _data_start(self) -> int:
        """Where a stored member's bytes begin: after its local header (30 bytes, the name
        and an extra field whose lengths the header gives)."""
        with self.path.open("rb") as raw:
            raw.seek(self._member.header_offset)
            header = raw.read(30)
        name_length, extra_length = np.frombuffer(header[26:30], "<u2")
        return self._member.header_offset + 30 + int(name_length) + int(extra_length)

    def segments(self) -> list[tuple[int, int]]:
        return [(0, self.size)]

    def read(self, start: int, stop: int) -> Batch:
        count = (stop - start) * self._row_bytes
        position = self._offset + start * self._row_bytes
        if self._member.compress_type == zipfile.ZIP_STORED:
            with self.path.open("rb") as raw:
                raw.seek(position)
                data = raw.read(count)
        else:
            if self._stream is None or self._stream.tell() > position:
                if self._stream is not None:
                    self._stream.close()
                self._stream = self._zip.open(self._member)
                self._stream.MAX_SEEK_READ = 1 << 20  # type: ignore[attr-defined]
            self._stream.seek(position)
            data = self._stream.read(count)
        images = np.frombuffer(data, np.uint8).reshape(stop - start, *self._row_shape)
        return images, self._labels[start:stop]


class ImageFolder:
    """``<root>/<class>/<image>`` files, as Keras's ``image_dataset_from_directory`` reads them.

    Class ids: the model's own when every folder is named after one of its classes; else the
    folder names when all are whole numbers; else the folders' sorted order (Keras's rule),
    which :attr:`note` then says.
    """

    name = "folder"

    def __init__(
        self, root: Path, model_classes: Sequence[str], image_shape: tuple[int, int, int]
    ) -> None:
        if not root.is_dir():
            raise EvaluationError(f"{root}: no such dataset (expected {FORMS})")
        self.source, self._shape = str(root), image_shape
        folders = sorted(p.name for p in root.iterdir() if p.is_dir())
        files = [
            (folder, path)
            for folder in folders
            for path in sorted((root / folder).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not files:
            raise EvaluationError(f"{root}: no <class>/*.png or *.jpg images inside")
        self.note = ""
        if set(folders) <= set(model_classes):
            ids = {f: list(model_classes).index(f) for f in folders}
            self.class_names: tuple[str, ...] | None = tuple(model_classes)
        elif all(f.isascii() and f.isdigit() for f in folders):
            ids = {f: int(f) for f in folders}
            self.class_names = None
        else:
            ids = {f: i for i, f in enumerate(folders)}
            extra = range(len(folders), len(model_classes))  # classes no folder holds
            self.class_names = (*folders, *(f"class_{i}" for i in extra))
            self.note = "class ids are the class folders' sorted order (not the model's names)"
        self._paths = [path for _, path in files]
        self._labels = np.array([ids[folder] for folder, _ in files], dtype=np.int64)
        self.size = len(files)

    def segments(self) -> list[tuple[int, int]]:
        return [(0, self.size)]

    def read(self, start: int, stop: int) -> Batch:
        from service.codecs.images import decode_image

        images = np.empty((stop - start, *self._shape), np.uint8)
        for row, path in enumerate(self._paths[start:stop]):
            try:
                images[row] = decode_image(path.read_bytes(), self._shape, str(path))
            except InvalidInputError as exc:
                raise EvaluationError(exc.message) from None
            except OSError as exc:
                raise EvaluationError(f"{path}: cannot be read ({exc.strerror})") from None
        return images, self._labels[start:stop]

    def close(self) -> None:
        pass


def open_dataset(
    spec: DatasetSpec, model_classes: Sequence[str], image_shape: tuple[int, int, int]
) -> Dataset:
    """Open the dataset ``spec`` names for a model with these classes and image shape (an
    image folder maps its folder names to class ids by them). Raises :class:`EvaluationError`
    with the reason when it is missing or malformed."""
    from training.data import DatasetError

    path = Path(spec.dataset)
    try:
        cifar = cifar_path(spec)
        if cifar is not None:
            return CifarBatches(cifar, spec.split)
        if path.suffix == ".npz":
            return NpzFile(path)
        return ImageFolder(path, model_classes, image_shape)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    except READ_ERRORS as exc:
        raise EvaluationError(
            f"{spec.dataset}: cannot be read ({type(exc).__name__}: {exc})"
        ) from None
