"""scikit-learn's 8×8 handwritten digits, written in CIFAR-10's on-disk format.

A small real dataset that ships inside a PyPI package (``sklearn.datasets.load_digits``: 1,797
images of the digits 0–9 written by 43 people, from the UCI "Optical Recognition of
Handwritten Digits" set), so a model can be trained and evaluated on real data where CIFAR-10
cannot be downloaded. Nothing is downloaded: the data is a file inside scikit-learn.

Each image's 0–16 ink counts are upsampled 8×8 → 32×32 with bilinear interpolation (Pillow,
on the float values, so the strokes stay smooth rather than 4×4 blocks), scaled to 0–255
(bright ink on black), rounded to uint8 and repeated in three identical channels. The split
is stratified per class and seeded; the classes are named ``"0"``..``"9"``, and
``batches.meta`` carries ``dataset: sklearn-digits`` (what every run and model trained on it
records) and how it was made (``parameters``). It is not CIFAR-10: accuracy on it says
nothing about CIFAR-10.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from training.data import FOLDER_NAME, META, TEST_BATCH, TRAIN_BATCHES, cifar_batch

__all__ = ["CLASS_NAMES", "DATASET_NAME", "digits_parameters", "write_digits_cifar10"]

DATASET_NAME = "sklearn-digits"
CLASS_NAMES = tuple(str(digit) for digit in range(10))
GENERATOR_VERSION = 1
"""Bumped whenever the same arguments would write different bytes."""
SUBFOLDER = "digits"


def digits_parameters(*, test_fraction: float, seed: int) -> dict[str, Any]:
    """What ``batches.meta`` records under ``parameters``: everything the bytes depend on."""
    return {
        "generator": "training.digits",
        "generator_version": GENERATOR_VERSION,
        "source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)",
        "upsampling": "8x8 -> 32x32 bilinear (Pillow), 0-16 scaled to 0-255, 3 equal channels",
        "test_fraction": test_fraction,
        "seed": seed,
    }


def _upsample(images: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """``[N, 8, 8]`` ink counts 0–16 → ``[N, 32, 32, 3]`` uint8 0–255."""
    large = np.stack(
        [
            np.asarray(
                Image.fromarray(image.astype(np.float32)).resize(
                    (32, 32), Image.Resampling.BILINEAR
                )
            )
            for image in images
        ]
    )
    pixels = np.clip(np.rint(large * (255 / 16)), 0, 255).astype(np.uint8)
    return np.repeat(pixels[..., None], 3, axis=-1)


def _split(
    labels: npt.NDArray[np.int64], test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Stratified: ``round(test_fraction × n_c)`` of each class's n_c images are test images.
    Both index sets come back shuffled."""
    rng = np.random.default_rng(seed)
    train: list[npt.NDArray[np.int64]] = []
    test: list[npt.NDArray[np.int64]] = []
    for digit in range(len(CLASS_NAMES)):
        index = rng.permutation(np.flatnonzero(labels == digit))
        count = round(test_fraction * len(index))
        test.append(index[:count])
        train.append(index[count:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def write_digits_cifar10(root: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write ``root/digits/cifar-10-batches-py/`` (the training images in five batches, the test
    images in ``test_batch``) and return that folder. The same arguments always write the same
    bytes; ``batches.meta`` records them and is written last, so its presence means the
    folder is complete. Needs scikit-learn (the ``train`` extra)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r}: expected a fraction between 0 and 1")
    from sklearn.datasets import load_digits  # scikit-learn is only needed here

    digits = load_digits()
    images = _upsample(np.asarray(digits.images, dtype=np.float64))
    labels = np.asarray(digits.target, dtype=np.int64)
    train, test = _split(labels, test_fraction, seed)

    folder = Path(root) / SUBFOLDER / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).unlink(missing_ok=True)
    parts = np.array_split(train, len(TRAIN_BATCHES))
    for name, index in [*zip(TRAIN_BATCHES, parts, strict=True), (TEST_BATCH, test)]:
        filenames = [f"sklearn_digits_{i:04d}.png" for i in index]
        batch = cifar_batch(images[index], labels[index], name, filenames)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        b"num_cases_per_batch": len(parts[0]),
        b"label_names": [n.encode() for n in CLASS_NAMES],
        b"num_vis": 3072,
        b"dataset": DATASET_NAME.encode(),
        b"parameters": digits_parameters(test_fraction=test_fraction, seed=seed),
    }
    (folder / META).write_bytes(pickle.dumps(meta, protocol=2))
    return folder
