"""paho-mqtt's network loop on the asyncio event loop: paho's ``on_socket_*`` callbacks register its socket with
``add_reader``/``add_writer``, so every paho callback (and every spool call made from one) runs on the event-loop
thread. The only blocking paho call, ``connect()``, runs in a worker thread; while it runs (``connecting``) the
socket is not registered, and ``watch_after_connect`` registers it once ``connect()`` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

import paho.mqtt.client as paho


class LoopIo:
    """Binds one paho client's socket to the running asyncio loop. Create inside the loop (``attach``)."""

    def __init__(self) -> None:
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.connecting = False

    def attach(self, client: paho.Client) -> None:
        """Install the socket callbacks on ``client``; call on the event-loop thread."""
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def watch_after_connect(self) -> bool:
        """Register the socket of a client whose ``connect()`` just returned; False if it has none."""
        client = self._client
        assert client is not None and self._loop is not None
        sock = client.socket()
        if sock is None:
            return False
        if isinstance(sock, socket.socket):  # small packets, one per message: no Nagle delay (SSLSocket too)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(sock, self._readable)
        if client.want_write():
            self._loop.add_writer(sock, self._writable)
        return True

    def unwatch(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _on_socket_open(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        pass  # registered by watch_after_connect once connect() returned in its worker thread

    def _on_socket_close(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread():
            self.unwatch(sock)

    def _on_register_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread() and not self.connecting and self._loop is not None:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread() and self._loop is not None:
            self._loop.remove_writer(sock)

    def _readable(self) -> None:
        assert self._client is not None
        self._client.loop_read()

    def _writable(self) -> None:
        assert self._client is not None
        self._client.loop_write()
