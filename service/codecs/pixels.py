"""Nested pixel lists (``instances``) → a validated float32 batch of the model's image size."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInputError

__all__ = ["pixel_batch"]


def pixel_batch(
    values: object, shape: tuple[int, int, int], field: str = "instances"
) -> npt.NDArray[np.float32]:
    """``values`` as float32 ``[N, H, W, C]`` pixel values in 0–255, or an error naming the
    field and the expected shape."""
    expected = f"[N, {', '.join(map(str, shape))}]"
    try:
        batch = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"{field} must be a rectangular array of numbers with shape {expected}", field=field
        ) from None
    if batch.ndim != 4 or batch.shape[1:] != shape or batch.shape[0] == 0:
        raise InvalidInputError(
            f"{field} must have shape {expected} with N >= 1, got {list(batch.shape)}", field=field
        )
    low, high = batch.min(), batch.max()
    if not (low >= 0 and high <= 255):  # also false for NaN
        raise InvalidInputError(f"{field} must hold pixel values within [0, 255]", field=field)
    return batch
