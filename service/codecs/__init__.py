"""Conversions between wire values and numpy arrays, in one place for every transport."""

from service.codecs.images import decode_image, decode_images
from service.codecs.pixels import pixel_batch

__all__ = ["decode_image", "decode_images", "pixel_batch"]
