"""A provincial platform stand-in: an HTTPS server (test CA, optional client certificate and token) that records
every POST, keyed by the Idempotency-Key header, and answers 200, a chosen 4xx, or is down (port closed).

Runs in a thread of the test process on a free loopback port; ``stop()`` closes the port (connection refused, as a
platform that is down), ``start()`` opens it again on the same port.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers.http_connections import ConnectionCounts, counting_handler
from tests.servers.mqtt_tls import Pki
from tests.servers.process import free_port


class HttpsReceiver:
    def __init__(
        self,
        pki: Pki,
        *,
        status: int = 200,
        token: str | None = None,
        client_cert: bool = False,
        delay_s: float = 0.0,
        port: int | None = None,
        keep_alive: bool = True,
        idle_timeout_s: float | None = None,
    ) -> None:
        self.pki = pki
        self.delay_s = delay_s
        self.port = port or free_port()
        self.status = status
        self.token = token
        self.client_cert = client_cert
        self.posts: list[tuple[str, dict[str, Any]]] = []  # (Idempotency-Key, body), every POST answered
        self.unauthorised = 0
        self.keep_alive = keep_alive  # HTTP/1.1 keeps the connection for the next POST; HTTP/1.0 closes it
        self.idle_timeout_s = idle_timeout_s  # a kept connection idle this long is closed by the platform
        self.counts = ConnectionCounts()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def connections(self) -> int:
        return self.counts.opened

    @property
    def closed(self) -> int:
        return self.counts.closed

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/upload"

    def start(self) -> HttpsReceiver:
        receiver = self

        class Handler(counting_handler(self.counts, keep_alive=self.keep_alive, idle_timeout_s=self.idle_timeout_s)):  # type: ignore[misc]  # a class made at run time
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.token is not None and self.headers.get("Authorization") != f"Bearer {receiver.token}":
                    with receiver._lock:
                        receiver.unauthorised += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                key = self.headers.get("Idempotency-Key", "")
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # a slow platform: the test can kill the sender mid-upload
                if receiver.status < 300:
                    with receiver._lock:
                        receiver.posts.append((key, json.loads(body)))
                answer = json.dumps({"id": key, "status": "accepted" if receiver.status < 300 else "refused"}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        if self.client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.pki.ca)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender killed mid-request (the kill -9 test) is expected, not a failure of the receiver

        server = Server(("127.0.0.1", self.port), Handler)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> HttpsReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(k for k, _b in self.posts)

    def bodies(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for k, b in self.posts:
                out.setdefault(k, []).append(b)
        return out


def write_token(folder: Path, token: str) -> Path:
    path = folder / "receiver.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path
