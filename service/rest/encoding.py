"""Fast JSON responses: orjson, with numpy arrays written from their buffers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from service.repository import ServedModel

__all__ = ["JSONResponse", "model_ref"]


def model_ref(model: ServedModel) -> dict[str, str]:
    """The ``model`` object of a response: the version that answered."""
    return {"name": model.name, "version": str(model.version)}


class JSONResponse(Response):
    """JSON with numpy arrays written straight from their buffers (no ``tolist()``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
