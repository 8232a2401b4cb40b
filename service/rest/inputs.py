"""Image inputs of REST requests (``instances`` or base64 ``images``) → a pixel batch."""

from __future__ import annotations

from collections.abc import Sequence

from service.codecs import decode_images, pixel_batch
from service.codecs.images import decode_base64
from service.dataplane import DataPlane
from service.errors import InvalidInputError
from service.repository import ServedModel
from service.types import FloatArray

__all__ = ["image_batch"]


def image_batch(
    plane: DataPlane,
    model: ServedModel,
    instances: Sequence[object] | None,
    images: Sequence[str] | None,
) -> FloatArray:
    """Exactly one of ``instances`` (nested pixels) or ``images`` (base64 files or raw bytes),
    as a float32 ``[N, H, W, C]`` batch for ``model``; the batch limit is checked first."""
    if (instances is None) == (images is None):
        raise InvalidInputError("give exactly one of instances or images", field="instances")
    if instances is not None:
        plane.check_batch(len(instances), "instances")
        return pixel_batch(instances, model.image_shape)
    assert images is not None
    plane.check_batch(len(images), "images")
    raw = [decode_base64(text, f"images[{i}]") for i, text in enumerate(images)]
    return decode_images(raw, model.image_shape, "images")
