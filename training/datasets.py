"""Dataset specs → the CIFAR-format folder or archive to load, without TensorFlow.

One resolver for training (:func:`training.train.load_dataset`) and for anything else that
reads the same data (evaluation, benchmarks). A spec is one of:

- ``"synthetic"``, ``"synthetic:easy"`` or ``"synthetic:overlap=0.5,noise=40,clutter=2,
  label_noise=0.1"``: the generated stand-in at a difficulty
  (:func:`training.synthetic.parse_synthetic_spec`), written on first use under
  ``root/synthetic/<difficulty key>/cifar-10-batches-py``;
- ``"digits"``: scikit-learn's handwritten digits (:mod:`training.digits`), written on first use
  under ``root/digits/cifar-10-batches-py``;
- ``"cifar10"`` or ``None``: the real CIFAR-10, searched in ``./data/`` then the Keras cache;
- anything else: a path holding a CIFAR-format archive or folder.

These spellings take precedence over paths: a folder literally named ``digits`` is passed as
``./digits``. A generated folder is reused only when its ``batches.meta`` records exactly the
parameters that would be written now; otherwise it is written again.

This module imports numpy and the standard library only (and scikit-learn, lazily, when the
digits are first written), never TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.data import (
    FOLDER_NAME,
    DatasetError,
    locate_cifar10,
    missing_data_message,
    read_meta,
)
from training.digits import digits_parameters, write_digits_cifar10
from training.synthetic import (
    is_synthetic_spec,
    parse_synthetic_spec,
    synthetic_parameters,
    write_synthetic_cifar10,
)

__all__ = ["CIFAR10", "DATA_ROOT", "DIGITS", "dataset_folder", "is_generated"]

DATA_ROOT = Path("data")
DIGITS = "digits"
CIFAR10 = "cifar10"

# Arguments the resolver writes generated datasets with (the writers' defaults).
_SYNTHETIC_SIZES: dict[str, int] = {"train_per_batch": 2000, "test_size": 2000, "seed": 0}
_DIGITS_SPLIT: dict[str, Any] = {"test_fraction": 0.2, "seed": 0}


def is_generated(spec: str | None) -> bool:
    """Whether ``spec`` names a dataset written on first use (synthetic or digits) rather than
    data found on disk."""
    return spec == DIGITS or is_synthetic_spec(spec)


def _current(folder: Path, parameters: dict[str, Any]) -> bool:
    meta = read_meta(folder)
    return meta is not None and meta.get(b"parameters") == parameters


def _cached(folder: Path, parameters: dict[str, Any], write: Callable[[Path], Path]) -> Path:
    """``folder`` when it holds ``parameters``' dataset, else written by ``write(scratch)`` in
    a scratch folder beside it and renamed into place: processes that write the same dataset
    at once (Ray actors on one node) never see a half-written folder."""
    if _current(folder, parameters):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".writing-") as scratch:
        written = write(Path(scratch))
        if _current(folder, parameters):  # another process finished first
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # written with other parameters
        try:
            os.replace(written, folder)
        except OSError:
            if not _current(folder, parameters):
                raise
    return folder


def dataset_folder(spec: str | None, *, root: Path = DATA_ROOT) -> Path:
    """The CIFAR-format folder or archive a dataset spec names: ``"synthetic[:k=v,...|:easy]"``
    and ``"digits"`` are written under ``root`` on first use; ``"cifar10"`` or ``None``
    searches ``./data`` and the Keras cache (:func:`~training.data.locate_cifar10`), raising
    :class:`~training.data.DatasetError` with :func:`~training.data.missing_data_message` when
    absent; anything else is a path that must hold a CIFAR-format archive or folder
    (``locate_cifar10(path)``, which raises when it does not)."""
    if is_synthetic_spec(spec):
        assert spec is not None
        difficulty = parse_synthetic_spec(spec)
        base = root / "synthetic" / difficulty.key()
        return _cached(
            base / FOLDER_NAME,
            synthetic_parameters(difficulty, **_SYNTHETIC_SIZES),
            lambda into: write_synthetic_cifar10(into, difficulty=difficulty, **_SYNTHETIC_SIZES),
        )
    if spec == DIGITS:
        return _cached(
            root / DIGITS / FOLDER_NAME,
            digits_parameters(**_DIGITS_SPLIT),
            lambda into: write_digits_cifar10(into, **_DIGITS_SPLIT),
        )
    found = locate_cifar10(None if spec in (None, CIFAR10) else spec)
    if found is None:
        raise DatasetError(f"CIFAR-10 was not found.\n{missing_data_message()}")
    return found
