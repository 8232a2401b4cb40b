"""Benchmark: ``compute_loss`` (numpy) against TensorFlow/Keras on the same inputs, same run.

Run with ``.venv/bin/python -m bench.losses``. For each shape and loss it times
our value (and value + gradient) and Keras's loss object called eagerly and inside a
``tf.function``, then prints a Markdown table with the ratio ours / TF (lower is better).
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import date

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import tensorflow as tf

from bench._timing import median_ms
from service.losses import compute_loss

SHAPES = [(4096, 10), (4096, 1000)]
LOSSES = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "binary_focal_crossentropy": keras.losses.BinaryFocalCrossentropy,
}


def inputs(name: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, shape).astype(np.float32)
    if name.startswith("sparse"):
        return rng.integers(0, shape[1], shape[0]), logits
    return rng.integers(0, 2, shape).astype(np.float32), logits


def bench_row(name: str, shape: tuple[int, int], repeats: int) -> dict[str, float]:
    labels, logits = inputs(name, shape)
    keras_loss = LOSSES[name](from_logits=True)
    x, y = tf.constant(logits), tf.constant(labels)

    @tf.function
    def compiled() -> tf.Tensor:
        return keras_loss(y, x)

    def tf_gradient() -> object:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = keras_loss(y, x)
        return tape.gradient(value, x)

    return {
        "ours": median_ms(lambda: compute_loss(name, labels, logits=logits), repeats),
        "tf_eager": median_ms(lambda: keras_loss(y, x), repeats),
        "tf_function": median_ms(compiled, repeats),
        "ours_grad": median_ms(
            lambda: compute_loss(name, labels, logits=logits, return_gradient=True), repeats
        ),
        "tf_grad": median_ms(tf_gradient, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(
        f"{date.today().isoformat()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} CPUs · numpy {np.__version__} · TensorFlow {tf.__version__} · "
        f"median of {args.repeats} runs, milliseconds\n"
    )
    print(
        "| shape | loss | ours | TF eager | TF tf.function | ours / TF eager "
        "| ours / tf.function | ours+grad | TF+grad (tape) | ratio with grad |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape in SHAPES:
        for name in LOSSES:
            r = bench_row(name, shape, args.repeats)
            print(
                f"| {shape[0]}×{shape[1]} | {name} | {r['ours']:.2f} | {r['tf_eager']:.2f} "
                f"| {r['tf_function']:.2f} | {r['ours'] / r['tf_eager']:.2f} "
                f"| {r['ours'] / r['tf_function']:.2f} "
                f"| {r['ours_grad']:.2f} | {r['tf_grad']:.2f} "
                f"| {r['ours_grad'] / r['tf_grad']:.2f} |"
            )


if __name__ == "__main__":
    main()
