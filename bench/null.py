"""Null endpoints served by nginx (Debian's): what the load generator alone can drive on this
machine, so that a shortfall is attributed honestly. REST: a 200 with a short JSON body over
HTTP/1.1; gRPC: the same with ``grpc-status: 0`` trailers over cleartext HTTP/2."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.launcher import free_port, stop_process
from service.lifetime import die_with_parent

__all__ = ["running_null"]

CONFIG = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    client_body_temp_path {root}/body;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{ default_type application/json; return 200 '{{"null":true}}'; }}
    }}
    upstream null_http {{ server 127.0.0.1:{http_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        location / {{
            # Passed on so that nginx reads each request body: a body left unread holds the
            # HTTP/2 flow-control window, and the connection stalls after a few megabytes.
            proxy_pass http://null_http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_trailer grpc-status 0 always;
        }}
    }}
}}
"""


@contextmanager
def running_null() -> Iterator[tuple[int, int]]:
    """nginx on two free loopback ports; (REST port, gRPC port) when entered."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        ports = free_port(), free_port()
        config = root / "nginx.conf"
        config.write_text(CONFIG.format(root=root, http_port=ports[0], grpc_port=ports[1]))
        process = subprocess.Popen(
            ["nginx", "-c", str(config), "-p", str(root)], preexec_fn=die_with_parent
        )
        try:
            time.sleep(1)
            if process.poll() is not None:
                raise RuntimeError((root / "error.log").read_text())
            yield ports
        finally:
            stop_process(process)
