"""A test HTTP server's handler base that counts connections, so a test tells a keep-alive client (one connection
for many requests) from one that connects for every request, and sees when the server ended an idle one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any


class ConnectionCounts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened = 0  # connections accepted
        self.closed = 0  # connections ended (by either side)


def counting_handler(
    counts: ConnectionCounts, *, keep_alive: bool = True, idle_timeout_s: float | None = None
) -> type[BaseHTTPRequestHandler]:
    """A handler base: HTTP/1.1 (the connection kept for the next request) or HTTP/1.0 (closed after each answer);
    a kept connection idle ``idle_timeout_s`` is closed by the server."""

    class Counting(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        timeout = idle_timeout_s
        # headers and body are two writes: on a kept connection Nagle would hold the body for the client's delayed
        # ACK (40 ms an answer); servers made for keep-alive (nginx's tcp_nodelay) send at once
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with counts.lock:
                counts.opened += 1

        def finish(self) -> None:
            super().finish()
            with counts.lock:
                counts.closed += 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Counting
