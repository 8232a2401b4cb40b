"""Encoded images (PNG, JPEG, or raw H×W×C bytes) → uint8 pixel arrays of the model's size."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from service.errors import InvalidInputError

__all__ = ["decode_base64", "decode_image", "decode_images"]

FORMATS = ("PNG", "JPEG")
CONVERTIBLE_MODES = {"RGB": "RGB", "P": "RGB", "L": "L"}
"""Decoded modes accepted per channel count: palette PNGs are RGB images stored compactly."""


def decode_base64(text: object, field: str) -> bytes:
    """Standard or URL-safe base64 (padding optional) → bytes."""
    if not isinstance(text, str):
        raise InvalidInputError(f"{field} must be a base64 string", field=field)
    try:
        cleaned = text.strip().replace("-", "+").replace("_", "/")
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{field} is not valid base64", field=field) from None


def decode_image(data: bytes, shape: tuple[int, int, int], field: str) -> npt.NDArray[np.uint8]:
    """A PNG/JPEG of exactly ``shape`` (height, width, channels), or exactly ``h*w*c`` raw
    row-major HWC bytes, as a uint8 array of that shape."""
    height, width, channels = shape
    if len(data) == height * width * channels and not data.startswith((b"\x89PNG", b"\xff\xd8")):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    expected = f"a {width}x{height} {'RGB' if channels == 3 else 'grayscale'} PNG or JPEG"
    try:
        # Image.open only reads the header: the size is checked before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            if image.size != (width, height):
                got = f"{image.size[0]}x{image.size[1]}"
                raise InvalidInputError(f"{field}: expected {expected}, got {got}", field=field)
            wanted = "RGB" if channels == 3 else "L"
            if CONVERTIBLE_MODES.get(image.mode) != wanted:
                raise InvalidInputError(
                    f"{field}: expected {expected}, got mode {image.mode}", field=field
                )
            pixels = np.asarray(image.convert(wanted), dtype=np.uint8)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,  # a header claiming a size over PIL's pixel limit
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise InvalidInputError(
            f"{field}: expected {expected} or {height * width * channels} raw bytes ({exc})",
            field=field,
        ) from None
    return pixels.reshape(shape)


def decode_images(
    encoded: Sequence[bytes], shape: tuple[int, int, int], field: str
) -> npt.NDArray[np.uint8]:
    """Several encoded images → one uint8 batch ``[N, H, W, C]``."""
    if len(encoded) == 0:
        raise InvalidInputError(f"{field} must hold at least one image", field=field)
    batch = np.empty((len(encoded), *shape), dtype=np.uint8)
    for index, data in enumerate(encoded):
        batch[index] = decode_image(data, shape, f"{field}[{index}]")
    return batch
