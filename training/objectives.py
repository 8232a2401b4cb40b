"""Training objectives for each ``--top-activation``, all taking class ids and logits.

The exported graph always ends in logits; the activation a model is trained with is part of
its loss. Keras's own ``from_logits`` losses are used where they exist (they are exact in log
space, the semantics of :mod:`service.losses`); the article's ``normalized_logits`` has no
such form, so it is applied first and Keras's clipped probability cross-entropy follows.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["TOP_ACTIVATIONS", "normalized_logits", "objective_for"]

TOP_ACTIVATIONS = ("softmax", "sigmoid", "normalized_logits")


def normalized_logits(logits: tf.Tensor) -> tf.Tensor:
    """Shift each row by its minimum and divide by the row sum (uniform for a constant row),
    as :func:`service.activations.normalized_logits`."""
    shifted = logits - tf.reduce_min(logits, axis=-1, keepdims=True)
    total = tf.reduce_sum(shifted, axis=-1, keepdims=True)
    uniform = tf.fill(tf.shape(shifted), 1.0 / float(logits.shape[-1]))
    return tf.where(total > 0, shifted / tf.where(total > 0, total, 1.0), uniform)


class SparseSigmoidCrossentropy(keras.losses.Loss):
    """Binary cross-entropy from logits against the one-hot encoding of class ids."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        targets = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), tf.shape(y_pred)[-1])
        return keras.losses.binary_crossentropy(targets, y_pred, from_logits=True)


class SparseNormalizedLogitsCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy of the normalised logits (clipped at 1e-7)."""

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities = normalized_logits(y_pred)
        return keras.losses.sparse_categorical_crossentropy(y_true, probabilities)


def objective_for(top_activation: str) -> keras.losses.Loss:
    """The loss a model with this top activation is trained with."""
    if top_activation == "softmax":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if top_activation == "sigmoid":
        return SparseSigmoidCrossentropy(name="sparse_sigmoid_crossentropy")
    if top_activation == "normalized_logits":
        return SparseNormalizedLogitsCrossentropy(name="sparse_normalized_logits_crossentropy")
    raise ValueError(
        f"unknown top activation {top_activation!r}; expected one of {TOP_ACTIVATIONS}"
    )
