"""Debian's headless Chromium driven over the DevTools protocol (a WebSocket, with aiohttp): no driver binary, no
npm, nothing downloaded. ``async with Browser(tmp) as b: page = await b.open(url)``; ``await page.eval(js)``,
``await page.wait_for(js, timeout_s)``, ``await page.screenshot(path)``, ``await page.viewport(w, h)``.

Chromium runs as a child process with a fresh profile in the test's temp dir and the flags that keep it off the
network (background networking, component updates, sync) and working as root (--no-sandbox); the DevTools port is
the kernel's choice, read from ``DevToolsActivePort`` in the profile.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.e2e.wsbrowser import WsBrowser

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed: run deploy/test.sh, which installs Debian's chromium")


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        return await self._browser.call(method, session=self._session, **params)

    async def eval(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}")
            await asyncio.sleep(poll_s)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
        )

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        reply = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        return save(path, base64.b64decode(reply["data"]))


def save(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def launch(profile: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Chromium with a fresh profile, its output in ``log_path``."""
    profile.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=log, stderr=log
        )


class Browser(WsBrowser):
    async def __aenter__(self) -> Browser:
        profile = self.workdir / "chromium-profile"
        self._proc = launch(profile, self.workdir / "chromium.log")
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not start: {(self.workdir / 'chromium.log').read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        port, path = active.read_text().splitlines()[:2]
        await self._connect(f"ws://127.0.0.1:{port}{path}", 64 * 1024 * 1024)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        reply = await self._send(message)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    async def open(self, url: str) -> Page:
        target = (await self.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await self.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        page = Page(self, session)
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        await page.goto(url)
        return page
