"""Debian's Firefox ESR, headless, driven over WebDriver BiDi (a WebSocket, with aiohttp): the same few verbs as
``tests/e2e/browser.py`` for Chromium, so a page test can run in both. The profile is fresh, in the test's temp
dir, with the preferences that keep Firefox off the network (no remote settings, experiments or updates)."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pytest

from tests.e2e.browser import save
from tests.e2e.wsbrowser import WsBrowser

PREFS = {
    "app.normandy.enabled": False,
    "app.update.auto": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "toolkit.telemetry.enabled": False,
}


def firefox_binary() -> str:
    for name in ("firefox-esr", "firefox"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("firefox is not installed: run deploy/test.sh, which installs Debian's firefox-esr")


def launch(profile: Path, log_path: Path) -> subprocess.Popen[bytes]:
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text(
        "".join(f'user_pref("{k}", {orjson.dumps(v).decode()});\n' for k, v in PREFS.items())
    )
    home = profile.parent / "firefox-home"
    home.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [firefox_binary(), "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port=0"],
            stdout=log,
            stderr=log,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "MOZ_HEADLESS": "1"},
        )


class Firefox(WsBrowser):
    """``async with Firefox(tmp) as ff: await ff.goto(url); await ff.eval(js); await ff.screenshot(path)``."""

    TERMINATE_WAIT_S = 20.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.context = ""

    async def __aenter__(self) -> Firefox:
        log_path = self.workdir / "firefox.log"
        self._proc = launch(self.workdir / "firefox-profile", log_path)
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", log_path.read_text(errors="replace"))
            if found:
                break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"firefox did not start: {log_path.read_text(errors='replace')[-2000:]}")
            await asyncio.sleep(0.2)
        await self._connect(found.group(1) + "/session", 0)
        await self.call("session.new", capabilities={})
        tree = await self.call("browsingContext.getTree")
        self.context = tree["contexts"][0]["context"]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ws is not None and not self._ws.closed:
            await asyncio.gather(self.call("session.end"), return_exceptions=True)
        await self._close()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        reply = await self._send({"method": method, "params": params})
        if reply.get("type") == "error":
            raise AssertionError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply["result"]
        return result

    async def goto(self, url: str) -> None:
        await self.call("browsingContext.navigate", context=self.context, url=url, wait="complete")

    async def eval(self, expression: str) -> Any:
        reply = await self.call(
            "script.evaluate", expression=expression, target={"context": self.context}, awaitPromise=True
        )
        if reply.get("type") == "exception":
            raise AssertionError(f"{expression}: {reply.get('exceptionDetails')}")
        return _value(reply["result"])

    async def wait_for(self, expression: str, timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}")
            await asyncio.sleep(0.2)

    async def viewport(self, width: int, height: int) -> None:
        await self.call(
            "browsingContext.setViewport", context=self.context, viewport={"width": width, "height": height}
        )

    async def screenshot(self, path: Path) -> Path:
        reply = await self.call("browsingContext.captureScreenshot", context=self.context, origin="document")
        return save(path, base64.b64decode(reply["data"]))


def _value(remote: dict[str, Any]) -> Any:
    """A BiDi remote value as Python (primitives, and arrays of them)."""
    kind = remote.get("type")
    if kind in ("undefined", "null"):
        return None
    if kind == "array":
        return [_value(v) for v in remote.get("value", [])]
    return remote.get("value")
