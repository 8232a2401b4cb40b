"""Pixel arrays from any wire form → a validated batch the data plane accepts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.errors import InvalidInputError

__all__ = ["pixels"]


def pixels(array: npt.NDArray[np.generic], field: str) -> npt.NDArray[np.generic]:
    """``array`` as pixel values in [0, 255]: uint8 unchanged (every value is in range), any
    other numeric type as float32 after a range check. The shape is the data plane's to check."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"{field} must hold numeric pixel values", field=field)
    # Checked before the cast: FP64 values beyond float32's range would overflow in it.
    if array.size and not (array.min() >= 0 and array.max() <= 255):  # also false for NaN
        raise InvalidInputError(f"{field} must hold pixel values within [0, 255]", field=field)
    return array.astype(np.float32, copy=False)
