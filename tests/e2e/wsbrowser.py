"""What the two browser drivers share: a browser process and one WebSocket of JSON commands answered by ``id``
(Chromium's DevTools protocol in ``browser.py``, Firefox's WebDriver BiDi in ``firefox.py``)."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson


class WsBrowser:
    """The process, the socket, the reader that hands each reply to its waiter, and the teardown."""

    TERMINATE_WAIT_S = 10.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def _connect(self, url: str, max_msg_size: int) -> None:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url, max_msg_size=max_msg_size)
        self._reader = asyncio.create_task(self._read())

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(self.TERMINATE_WAIT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            reply = orjson.loads(msg.data)
            waiter = self._waiting.pop(reply.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)

    async def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one command (its ``id`` is added) and return the reply with that id."""
        assert self._ws is not None
        ident = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = waiter
        await self._ws.send_str(orjson.dumps({"id": ident, **message}).decode())
        return await asyncio.wait_for(waiter, 60)
