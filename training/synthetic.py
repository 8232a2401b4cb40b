"""A clearly labelled synthetic stand-in for CIFAR-10, written in CIFAR-10's on-disk format.

Ten visually distinct classes (a colour and a pattern each) with random position, brightness
and Gaussian pixel noise, deterministic by seed. It exists so the whole pipeline runs and is
tested where the real archive cannot be downloaded; it proves a pipeline learns, nothing more.
Its ``batches.meta`` carries ``dataset: synthetic``, which the loader reports and every model
trained on it records in its metadata.
"""

from __future__ import annotations

import colorsys
import pickle
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.data import FOLDER_NAME, META, TEST_BATCH, TRAIN_BATCHES

__all__ = ["CLASS_NAMES", "write_synthetic_cifar10"]

PATTERNS = (
    "horizontal-stripes",
    "vertical-stripes",
    "disk",
    "square",
    "diagonal-stripes",
    "checkerboard",
    "cross",
    "gradient",
    "ring",
    "dots",
)
COLOURS = tuple(
    tuple(int(255 * c) for c in colorsys.hsv_to_rgb(k / len(PATTERNS), 0.9, 1.0))
    for k in range(len(PATTERNS))
)
CLASS_NAMES = tuple(f"synthetic-{pattern}" for pattern in PATTERNS)


def _masks(kind: int, count: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Foreground masks ``[count, 32, 32]`` in [0, 1] for one pattern, randomly placed."""
    rows, cols = np.mgrid[0:32, 0:32].astype(np.float32)
    dy, dx = (rng.uniform(-5, 5, (2, count, 1, 1))).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (count, 1, 1)).astype(np.float32)
    r, c = rows - 15.5 - dy, cols - 15.5 - dx
    radius = np.hypot(r, c)
    name = PATTERNS[kind]
    mask: npt.ArrayLike
    if name == "horizontal-stripes":
        mask = np.sin(rows * 0.8 + phase) > 0
    elif name == "vertical-stripes":
        mask = np.sin(cols * 0.8 + phase) > 0
    elif name == "disk":
        mask = radius < 9
    elif name == "square":
        mask = (np.abs(r) < 10) & (np.abs(c) < 10) & ~((np.abs(r) < 6) & (np.abs(c) < 6))
    elif name == "diagonal-stripes":
        mask = np.sin((rows + cols) * 0.6 + phase) > 0
    elif name == "checkerboard":
        mask = (np.floor((r + 32) / 5) + np.floor((c + 32) / 5)) % 2
    elif name == "cross":
        mask = (np.abs(r) < 3) | (np.abs(c) < 3)
    elif name == "gradient":
        mask = np.broadcast_to(np.clip((c + 16) / 32, 0, 1), (count, 32, 32))
    elif name == "ring":
        mask = (radius > 6) & (radius < 11)
    else:  # dots
        mask = (np.sin(r * 1.2) > 0.5) & (np.sin(c * 1.2) > 0.5)
    return np.asarray(np.broadcast_to(mask, (count, 32, 32)), dtype=np.float32)


def _images(labels: npt.NDArray[np.int64], rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    images = np.empty((len(labels), 32, 32, 3), dtype=np.float32)
    for kind in range(len(PATTERNS)):
        index = np.flatnonzero(labels == kind)
        mask = _masks(kind, len(index), rng)[..., None]
        colour = np.asarray(COLOURS[kind], dtype=np.float32)
        background = rng.uniform(0, 90, (len(index), 1, 1, 3)).astype(np.float32)
        brightness = rng.uniform(0.6, 1.0, (len(index), 1, 1, 1)).astype(np.float32)
        images[index] = mask * colour * brightness + (1 - mask) * background
    images += rng.normal(0, 20, images.shape).astype(np.float32)
    return np.clip(images, 0, 255).astype(np.uint8)


def _batch(
    labels: npt.NDArray[np.int64], rng: np.random.Generator, name: str
) -> dict[bytes, object]:
    images = _images(labels, rng)
    return {
        b"batch_label": name.encode(),
        b"labels": labels.tolist(),
        # CIFAR stores each image as its R, G and B planes, 1024 bytes each.
        b"data": images.transpose(0, 3, 1, 2).reshape(len(labels), 3072),
        b"filenames": [f"synthetic_{name}_{i:05d}.png".encode() for i in range(len(labels))],
    }


def write_synthetic_cifar10(
    root: str | Path, *, train_per_batch: int = 2000, test_size: int = 2000, seed: int = 0
) -> Path:
    """Write ``root/cifar-10-batches-py/`` (five training batches and a test batch) and return
    that folder. The same arguments always write the same bytes."""
    folder = Path(root) / FOLDER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = len(PATTERNS)
    meta = {
        b"num_cases_per_batch": train_per_batch,
        b"label_names": [n.encode() for n in CLASS_NAMES],
        b"num_vis": 3072,
        b"dataset": b"synthetic",
    }
    batches = {name: train_per_batch for name in TRAIN_BATCHES} | {TEST_BATCH: test_size}
    for name, size in batches.items():
        labels = rng.permutation(np.arange(size, dtype=np.int64) % classes)
        (folder / name).write_bytes(pickle.dumps(_batch(labels, rng, name), protocol=2))
    (folder / META).write_bytes(pickle.dumps(meta, protocol=2))
    return folder
