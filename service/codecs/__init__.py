"""Conversions between wire values and numpy arrays, in one place for every transport."""

from service.codecs.images import decode_base64, decode_image, decode_images
from service.codecs.pixels import pixels

__all__ = ["decode_base64", "decode_image", "decode_images", "pixels"]
