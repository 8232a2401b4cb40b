"""REST request bodies → data-plane calls. Pure functions of the body, so the data plane can run
them on its executor when the body is large.

JSON is parsed once with simdjson; pixel arrays (``instances``) are read straight into numpy,
every other field goes through the pydantic schema (wrong types: 422).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.codecs import decode_base64, decode_images, pixels
from service.codecs.json_arrays import (
    JsonArray,
    JsonObject,
    fields,
    numeric_array,
    parse,
    to_python,
    value_text,
)
from service.dataplane import (
    CalibrateRequest,
    DataPlane,
    Images,
    LossInput,
    LossRequest,
    ModelImages,
    Predictions,
    PredictOptions,
)
from service.errors import InvalidInputError
from service.repository import ServedModel
from service.rest.schemas import CalibrateBody, LabelledFields, LossBody, PredictBody

__all__ = ["PredictCall", "decode_calibrate", "decode_loss", "decode_predict", "decode_uploads"]

PIXELS = "instances"


@dataclass(frozen=True)
class PredictCall:
    """A decoded ``POST /predict``: the arguments of :meth:`DataPlane.predict`."""

    model: ServedModel
    images: Images
    options: PredictOptions
    field: str


@dataclass(frozen=True)
class _Pixels:
    """The parsed pixel array (``instances``), and the body from its first byte on when that
    can be found without a parser (``json_arrays.value_text``)."""

    array: JsonArray
    text: bytes | None


def _fields(body: bytes) -> tuple[Any, _Pixels | None]:
    """The body's fields as Python values for validation, and the pixel array kept aside."""
    document = parse(body)
    if not isinstance(document, JsonObject):
        return to_python(document), None  # not an object: the schema says so (422)
    pixel_array = document.get(PIXELS)
    if not isinstance(pixel_array, JsonArray):
        return fields(document), None
    plain = fields(document, keep=(PIXELS,))
    del plain[PIXELS]
    return plain, _Pixels(pixel_array, value_text(body, PIXELS))


def _images(
    plane: DataPlane,
    model: ServedModel,
    pixel_array: _Pixels | None,
    encoded: Sequence[str] | None,
) -> tuple[Images, str]:
    """The pixel batch of ``instances`` or of base64 ``images``; the row limit is checked
    before anything is decoded."""
    if pixel_array is not None:
        plane.check_rows(len(pixel_array.array), PIXELS)
        values = numeric_array(pixel_array.array, PIXELS, text=pixel_array.text)
        return pixels(values, PIXELS), PIXELS
    assert encoded is not None
    plane.check_rows(len(encoded), "images")
    raw = [decode_base64(text, f"images[{i}]") for i, text in enumerate(encoded)]
    return decode_images(raw, model.image_shape, "images"), "images"


def decode_predict(body: bytes, plane: DataPlane) -> PredictCall:
    """``POST /predict`` as JSON."""
    fields, pixel_array = _fields(body)
    parsed = PredictBody.model_validate(fields)
    has_pixels = pixel_array is not None or parsed.instances is not None
    if has_pixels == (parsed.images is not None):
        raise InvalidInputError("give exactly one of instances or images", field=PIXELS)
    model = plane.model(parsed.model, parsed.version)
    images, field = _images(plane, model, pixel_array, parsed.images)
    return PredictCall(model, images, parsed.options(), field)


def decode_uploads(files: Sequence[bytes], model: ServedModel, plane: DataPlane) -> Images:
    """Uploaded image files (multipart ``file`` fields) → a pixel batch."""
    plane.check_rows(len(files), "file")
    return decode_images(files, model.image_shape, "file")


def _labelled_inputs(
    parsed: LabelledFields, pixel_array: _Pixels | None, plane: DataPlane
) -> LossInput:
    """What a labelled request's predictions are: exactly one of logits, probabilities,
    instances or images (then with the model they are for)."""
    given = {
        "logits": parsed.logits is not None,
        "probabilities": parsed.probabilities is not None,
        PIXELS: pixel_array is not None or parsed.instances is not None,
        "images": parsed.images is not None,
    }
    if sum(given.values()) != 1:
        raise InvalidInputError(
            "give exactly one of logits, probabilities, instances or images", field="logits"
        )
    if parsed.logits is not None:
        return Predictions(parsed.logits, from_logits=True)
    if parsed.probabilities is not None:
        return Predictions(parsed.probabilities, from_logits=False)
    model = plane.model(parsed.model, parsed.version)
    images, field = _images(plane, model, pixel_array, parsed.images)
    return ModelImages(model, images, field)


def decode_loss(body: bytes, plane: DataPlane) -> LossRequest:
    """``POST /loss``."""
    fields, pixel_array = _fields(body)
    parsed = LossBody.model_validate(fields)
    return LossRequest(
        loss=parsed.loss,
        labels=parsed.labels,
        inputs=_labelled_inputs(parsed, pixel_array, plane),
        reduction=parsed.reduction,
        sample_weight=parsed.sample_weight,
        options=parsed.options(),
        return_gradient=parsed.return_gradient,
    )


def decode_calibrate(body: bytes, plane: DataPlane) -> CalibrateRequest:
    """``POST /calibrate``."""
    fields, pixel_array = _fields(body)
    parsed = CalibrateBody.model_validate(fields)
    return CalibrateRequest(parsed.labels, _labelled_inputs(parsed, pixel_array, plane))
