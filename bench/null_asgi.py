"""``python -m bench.null_asgi PORT``: uvicorn (with uvloop and httptools, as the service runs
it, access log off) serving a bare ASGI app that reads the request body and answers every
request with a fixed short JSON 200 — the cost of a Python HTTP/1.1 front alone, without any
framework's routing."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

__all__ = ["BODY", "app"]

BODY = b'{"null":true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
END = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as any real endpoint must
        more = (await receive()).get("more_body", False)
    await send(START)
    await send(END)


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, lifespan="off",
        log_level="warning",
    )  # fmt: skip
