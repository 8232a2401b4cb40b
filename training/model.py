"""The separable-conv residual CNN for CIFAR-10 (the Keras "image classification from
scratch" architecture at CIFAR scale).

Two models share their weights: ``core`` maps 0–255 NHWC pixels to **logits** (rescaling to
[−1, 1] is inside the graph; there is no activation: activations are the server's job) and is
what gets exported; the training model puts random flip/rotation augmentation in front of it,
and only in training. Normalising-activation variants live in the loss, not the graph
(:mod:`training.objectives`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
from keras import layers

__all__ = ["ModelConfig", "build_core", "build_training_model"]

INPUT_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings, saved with every run so its weights can be rebuilt."""

    num_classes: int = 10
    width: float = 1.0
    """Multiplier on every layer's filter count (1.0 is the published architecture)."""
    dropout: float = 0.5
    batch_norm_momentum: float = 0.9
    """Keras's default is 0.99; 0.9 lets the moving statistics settle within short runs."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _filters(config: ModelConfig, base: int) -> int:
    return max(8, round(base * config.width))


def build_core(config: ModelConfig) -> keras.Model:
    """Pixels ``[N, 32, 32, 3]`` float32 in 0–255 → logits ``[N, num_classes]``."""

    def norm() -> layers.Layer:
        return layers.BatchNormalization(momentum=config.batch_norm_momentum)

    inputs = keras.Input(INPUT_SHAPE, name="images")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(_filters(config, 32), 3, strides=2, padding="same")(x)
    x = layers.Activation("relu")(norm()(x))
    x = layers.Conv2D(_filters(config, 64), 3, padding="same")(x)
    x = layers.Activation("relu")(norm()(x))
    previous = x
    for base in (128, 256):
        size = _filters(config, base)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.Activation("relu")(norm()(x))
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = norm()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.SeparableConv2D(_filters(config, 1024), 3, padding="same")(x)
    x = layers.Activation("relu")(norm()(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(config.dropout)(x)
    logits = layers.Dense(config.num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="core")


def build_training_model(core: keras.Model) -> keras.Model:
    """``core`` behind random horizontal flips and rotations (±10% of a turn), which Keras
    applies only while training."""
    inputs = keras.Input(INPUT_SHAPE, name="images")
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.1)(x)
    return keras.Model(inputs, core(x), name="trainer")
