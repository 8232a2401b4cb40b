"""TensorFlow/Keras as the reference implementation the numerics core is compared with."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import tensorflow as tf

tf.config.set_visible_devices([], "GPU")

__all__ = ["exact_categorical_focal", "keras_gradient", "keras_value", "tf"]

KERAS_LOSSES: dict[str, Any] = {
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "binary_focal_crossentropy": keras.losses.BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": keras.losses.CategoricalFocalCrossentropy,
    "hinge": keras.losses.Hinge,
    "squared_hinge": keras.losses.SquaredHinge,
    "categorical_hinge": keras.losses.CategoricalHinge,
}
HINGES = {"hinge", "squared_hinge", "categorical_hinge"}


def keras_loss_object(name: str, *, from_logits: bool, reduction: str, **options: Any) -> Any:
    kwargs = dict(options, reduction=reduction)
    if name not in HINGES:
        kwargs["from_logits"] = from_logits
    return KERAS_LOSSES[name](**kwargs)


def keras_value(
    name: str,
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    from_logits: bool,
    reduction: str,
    sample_weight: np.ndarray | None = None,
    **options: Any,
) -> np.ndarray:
    """The Keras loss value (array for ``reduction="none"``)."""
    loss = keras_loss_object(name, from_logits=from_logits, reduction=reduction, **options)
    return np.asarray(loss(labels, predictions, sample_weight=sample_weight))


def keras_gradient(
    name: str,
    labels: np.ndarray,
    logits: np.ndarray,
    *,
    reduction: str,
    sample_weight: np.ndarray | None = None,
    **options: Any,
) -> np.ndarray:
    """d loss / d logits by TensorFlow autodiff (of the sum, for ``reduction="none"``)."""
    loss = keras_loss_object(name, from_logits=True, reduction=reduction, **options)
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(labels, x, sample_weight=sample_weight)
    return np.asarray(tape.gradient(value, x))


def exact_categorical_focal(
    labels: np.ndarray, logits: np.ndarray, *, alpha: Any, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample categorical focal loss from logits, unclipped, in float64, and its gradient
    w.r.t. the logits by autodiff. (Keras clips even from logits; see ``_focal.py``.)"""
    x = tf.constant(logits.astype(np.float64))
    y = tf.constant(labels.astype(np.float64))
    a = tf.constant(np.asarray(alpha, dtype=np.float64))
    with tf.GradientTape() as tape:
        tape.watch(x)
        log_p = tf.nn.log_softmax(x)
        q = -tf.math.expm1(log_p)
        # d(q**0)/dq is 0 * q**-1, NaN at q = 0 under autodiff; the factor is constant 1.
        modulating = q**gamma if gamma else tf.ones_like(q)
        per_sample = tf.reduce_sum(a * modulating * y * -log_p, axis=-1)
    return per_sample.numpy(), tape.gradient(per_sample, x).numpy()
