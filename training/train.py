"""Train one model: data → tf.data pipelines → fit → history, curves, best weights."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from training.data import Cifar10, load_cifar10
from training.datasets import DATA_ROOT, dataset_folder
from training.digits import DATASET_NAME as DIGITS_NAME
from training.model import ModelConfig, build_core, build_training_model
from training.objectives import objective_for
from training.plots import plot_history
from training.synthetic import SyntheticDifficulty

__all__ = [
    "PARITY_IMAGES",
    "TrainConfig",
    "announce_dataset",
    "dataset_details",
    "dataset_label",
    "load_dataset",
    "train",
]

_DIFFICULTY_FIELDS = tuple(SyntheticDifficulty.__dataclass_fields__)
PARITY_IMAGES = 256
"""Validation images kept with each run for the export's ONNX-vs-Keras parity check."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved as the run's ``config.json``)."""

    data: str | None = None
    """A dataset spec (:mod:`training.datasets`): a path, ``"synthetic[:…]"``, ``"digits"``,
    or ``None``/``"cifar10"`` to search ``./data/`` and the Keras cache."""
    epochs: int = 18
    batch_size: int = 128
    max_samples: int | None = None
    """Cap on training images (a random subset), for smoke runs."""
    max_val_samples: int | None = None
    top_activation: str = "softmax"
    learning_rate: float = 1e-3
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)


def load_dataset(data: str | None, *, root: Path = DATA_ROOT) -> Cifar10:
    """The dataset a spec names (:func:`training.datasets.dataset_folder`): the real CIFAR-10
    (searched as in :func:`training.data.locate_cifar10`) for ``None``, a path, or a generated
    dataset (``"synthetic[:…]"``, ``"digits"``) written under ``root`` on first use."""
    return load_cifar10(dataset_folder(data, root=root))


def dataset_details(name: str, parameters: Mapping[str, Any]) -> str:
    """What distinguishes one generated dataset from another: the synthetic difficulty
    (``overlap=…, noise=…, clutter=…, label_noise=…``); empty for any other dataset."""
    if name != "synthetic":
        return ""
    try:
        difficulty = SyntheticDifficulty(**{k: parameters[k] for k in _DIFFICULTY_FIELDS})
    except (KeyError, TypeError, ValueError):
        return "difficulty not recorded"
    return difficulty.describe()


def dataset_label(name: str, parameters: Mapping[str, Any]) -> str:
    """The dataset's name, with the difficulty for synthetic data (for titles and tables)."""
    details = dataset_details(name, parameters)
    return f"{name} ({details})" if details else name


def announce_dataset(dataset: Cifar10) -> None:
    """Say loudly which data a run uses."""
    if dataset.name == "synthetic":
        print(
            "=" * 78 + "\nDATASET: SYNTHETIC stand-in for CIFAR-10 (generated shapes, not real "
            f"photographs) from {dataset.source}.\n"
            f"Difficulty: {dataset_details(dataset.name, dataset.parameters)}.\n"
            "Accuracy on it says the pipeline learns, nothing about CIFAR-10.\n" + "=" * 78,
            flush=True,
        )
    elif dataset.name == DIGITS_NAME:
        print(
            "=" * 78 + "\nDATASET: scikit-learn's handwritten DIGITS (real 8x8 scans of the "
            "digits 0-9, upsampled to 32x32 grey in 3 channels; NOT CIFAR-10) from "
            f"{dataset.source}.\nAccuracy on it says nothing about CIFAR-10.\n" + "=" * 78,
            flush=True,
        )
    elif dataset.name == "cifar10":
        print(f"Dataset: CIFAR-10 from {dataset.source}", flush=True)
    else:
        print(f"Dataset: {dataset.name} (CIFAR-10 format) from {dataset.source}", flush=True)


def _subset(
    x: npt.NDArray[np.uint8], y: npt.NDArray[np.int64], limit: int | None, seed: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if limit is None or limit >= len(x):
        return x, y
    keep = np.random.default_rng(seed).permutation(len(x))[:limit]
    return x[keep], y[keep]


def pipeline(
    x: npt.NDArray[np.uint8], y: npt.NDArray[np.int64], batch_size: int, *, shuffle_seed: int | None
) -> tf.data.Dataset:
    """Batches of (float32 0–255 images, int labels), shuffled when a seed is given."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda images, labels: (tf.cast(images, tf.float32), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def train(config: TrainConfig, out: str | Path, *, verbose: int | str = "auto") -> dict[str, Any]:
    """Train, writing into ``out``: ``config.json``, ``history.csv``/``history.json``,
    ``curves.png``, ``best.weights.h5`` (best validation top-1), ``parity_images.npy`` and
    ``summary.json``. Returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(config.data)
    announce_dataset(dataset)
    keras.utils.set_random_seed(config.seed)
    x_train, y_train = _subset(dataset.x_train, dataset.y_train, config.max_samples, config.seed)
    x_val, y_val = _subset(dataset.x_test, dataset.y_test, config.max_val_samples, config.seed)
    np.save(out / "parity_images.npy", x_val[:PARITY_IMAGES])
    model_config = ModelConfig(**{**asdict(config.model), "num_classes": len(dataset.class_names)})
    record = {
        "train": asdict(config) | {"model": model_config.to_dict()},
        "dataset": dataset.name,
        "dataset_parameters": dataset.parameters,
        "dataset_source": str(dataset.source),
        "class_names": list(dataset.class_names),
        "train_samples": len(x_train),
        "val_samples": len(x_val),
    }
    (out / "config.json").write_text(json.dumps(record, indent=2))

    trainer = build_training_model(build_core(model_config))
    trainer.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=objective_for(config.top_activation),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        ],
    )
    started = time.perf_counter()
    history = trainer.fit(
        pipeline(x_train, y_train, config.batch_size, shuffle_seed=config.seed),
        validation_data=pipeline(x_val, y_val, config.batch_size, shuffle_seed=None),
        epochs=config.epochs,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
        callbacks=[
            keras.callbacks.CSVLogger(str(out / "history.csv")),
            keras.callbacks.ModelCheckpoint(
                str(out / "best.weights.h5"),
                monitor="val_accuracy",
                mode="max",
                save_best_only=True,
                save_weights_only=True,
            ),
        ],
    )
    seconds = time.perf_counter() - started
    metrics = {k: [float(v) for v in values] for k, values in history.history.items()}
    (out / "history.json").write_text(json.dumps(metrics, indent=2))
    label = dataset_label(dataset.name, dataset.parameters)
    title = f"{out.name}: {config.top_activation} on {label}"
    plot_history(metrics, out / "curves.png", title=title)
    best = int(np.argmax(metrics["val_accuracy"]))
    summary = {
        "top_activation": config.top_activation,
        "dataset": dataset.name,
        "dataset_parameters": dataset.parameters,
        "epochs": config.epochs,
        "seconds": round(seconds, 1),
        "best_epoch": best + 1,
        "best_val_accuracy": metrics["val_accuracy"][best],
        "best_val_top5": metrics["val_top5"][best],
        **{f"final_{k}": values[-1] for k, values in metrics.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
