"""RestClient sends a request again when its connection closed before any answer (a server
draining, a proxy reloading), and gives up after ``retries``."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from service.client import RestClient

ANSWER = json.dumps(
    {"model": {"name": "m", "version": "1"}, "activation": "softmax", "logits": [[1.0, 2.0]]}
).encode()


def read_request(connection: socket.socket) -> bytes:
    """The whole request (headers and body): closing with unread bytes would reset the
    connection instead of closing it."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := connection.recv(1 << 16)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length and (chunk := connection.recv(1 << 16)):
        body += chunk
    return data


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[int], list[str]]]:
    """Closes the first ``drops[0]`` connections after reading a request; answers the rest."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    drops, seen, done = [1], [], threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            with connection:
                request = read_request(connection)
                seen.append(request.split(b"\r\n", 1)[0].decode())
                if drops[0] > 0:
                    drops[0] -= 1
                    continue  # closed without a word
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", drops, seen
    done.set()
    thread.join(timeout=5)
    listener.close()


def test_a_request_dropped_before_any_answer_is_sent_again(flaky_server) -> None:
    url, _, seen = flaky_server
    result = RestClient(url, retries=2).predict(np.zeros((1, 32, 32, 3), np.uint8))
    assert result.logits.tolist() == [[1.0, 2.0]]
    assert seen == ["POST /predict HTTP/1.1"] * 2


def test_retries_are_bounded(flaky_server) -> None:
    url, drops, seen = flaky_server
    drops[0] = 10
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        RestClient(url, retries=1).predict(np.zeros((1, 32, 32, 3), np.uint8))
    assert len(seen) == 2
