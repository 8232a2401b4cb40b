"""Fast JSON in and out: orjson, with numpy arrays serialised natively."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from service.errors import InvalidInputError

__all__ = ["JSONResponse", "read_json"]


class JSONResponse(Response):
    """JSON with numpy arrays written straight from their buffers (no ``tolist()``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def read_json(request: Request) -> Any:
    """The request body parsed as JSON, or a 400 naming the problem."""
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None
