"""The web server on a real loopback port, driven by an HTTP client: logins, refusals, the push, bounds and TLS
client certificates. The agent behind it is a stand-in here (tests/e2e/test_web_browser.py runs the real one)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from agent.config.web import WebConfig, WebTlsConfig
from agent.model import PollResult, Quality, Sample
from agent.web.auth import hash_password
from agent.web.live import LiveState, LogRing
from agent.web.server import COOKIE, WebServer
from agent.web.view import DeviceInfo
from simulators.layout import write_site
from tests.servers.mqtt_tls import make_pki

PASSWORD = "correct horse battery"
FAST_HASH = hash_password(PASSWORD, n=2**10)


class StandIn:
    """What the runtime offers the page, for one device ``m1`` on a site file that validates."""

    def __init__(self, site: Path) -> None:
        self.site_path = site

    def meta(self) -> dict[str, Any]:
        return {"version": "0", "site": "s", "gateway": "g", "boot": "b", "started_ts": 0.0, "reloaded_ts": None}

    def devices(self) -> list[DeviceInfo]:
        return [
            DeviceInfo("main-meter", "modbus", "bus plant-gateway unit 1", 1.0, True),
            DeviceInfo("rtu-meter", "modbus", "bus rs485-1 unit 7", 1.0, True, "on serial bus rs485-1, ..."),
        ]

    def health(self) -> dict[str, Any]:
        return {"devices": {"main-meter": {"state": "ok", "consecutive_failures": 0}}, "spool": {"depth": 3}}

    def raw_registers(self, device: str) -> dict[str, str] | None:
        return {"p": "4049 0FDB"} if device == "main-meter" else None

    def hints(self, reasons: list[str]) -> list[str]:
        return []


@asynccontextmanager
async def serving(tmp_path: Path, **config: Any) -> AsyncIterator[WebServer]:
    site = write_site(tmp_path / "site.yaml", "127.0.0.1", 5020)
    site.write_text(site.read_text() + "mqtt: {host: 127.0.0.1, username: gw1, password: do-not-show}\n")
    live = LiveState()
    ring = LogRing()
    cfg = WebConfig.model_validate({"enabled": True, "port": 0} | config)
    async with WebServer(cfg, StandIn(site), live, ring, tmp_path, push_interval_s=0.1, header_timeout_s=0.5) as server:
        task = asyncio.create_task(server.run())
        try:
            yield server
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def url(server: WebServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_loopback_without_password_serves_page_snapshot_and_push(tmp_path: Path) -> None:
    async with serving(tmp_path) as server, aiohttp.ClientSession() as http:
        async with http.get(url(server)) as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
        async with http.get(url(server, "/static/app.js")) as r:
            assert r.status == 200 and "WebSocket" in await r.text()
        async with http.get(url(server, "/static/../server.py")) as r:
            assert r.status == 404
        async with http.get(url(server, "/api/snapshot")) as r:
            snap = await r.json()
        assert [d["name"] for d in snap["live"]["devices"]] == ["main-meter", "rtu-meter"]
        assert snap["live"]["spool"]["depth"] == 3
        async with http.get(url(server, "/api/raw/main-meter")) as r:
            assert await r.json() == {"p": "4049 0FDB"}
        async with http.get(url(server, "/api/site")) as r:
            text = await r.text()
        assert "do-not-show" not in text and "password: ********" in text
        async with http.ws_connect(url(server, "/ws")) as ws:
            first = orjson.loads((await ws.receive(timeout=5)).data)
            second = orjson.loads((await ws.receive(timeout=5)).data)
            assert (first["type"], second["type"]) == ("kpi", "live")
            assert second["devices"][0]["state"] == "waiting"
            server.live.on_poll(
                PollResult("main-meter", 1.0, 0.01, (Sample("main-meter", "p", 3.14, "kW", Quality.GOOD, 1.0),), 1)
            )
            while True:  # pushed without asking, within a push interval or two
                frame = orjson.loads((await ws.receive(timeout=5)).data)
                if frame["type"] == "live" and frame["devices"][0]["points"]:
                    break
            assert frame["devices"][0]["points"][0]["value"] == 3.14 and frame["devices"][0]["state"] == "ok"


async def test_with_a_password_nothing_but_the_login_is_served_without_the_session(tmp_path: Path) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of an IP address, as a browser does
    async with serving(tmp_path, password_hash=FAST_HASH) as server, aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(url(server), allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        for path in ("/api/snapshot", "/api/site", "/api/raw/main-meter", "/api/action/validate", "/static/app.js"):
            async with http.get(url(server, path)) as r:
                assert r.status == 401, path
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url(server, "/ws"))
        assert refused.value.status == 401
        async with http.post(url(server, "/login"), data={"password": "wrong"}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login?failed=1"
        assert not http.cookie_jar.filter_cookies(URL(url(server))).get(COOKIE)
        async with http.post(url(server, "/login"), data={"password": PASSWORD}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with http.get(url(server, "/api/snapshot")) as r:
            assert r.status == 200 and (await r.json())["live"]["meta"]["login"] is True
        async with http.ws_connect(url(server, "/ws")) as ws:
            assert orjson.loads((await ws.receive(timeout=5)).data)["type"] == "kpi"
        async with http.get(url(server, "/logout"), allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(url(server, "/api/snapshot")) as r:
            assert r.status == 401


async def test_failed_logins_are_logged_once_a_minute_with_their_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path, password_hash=FAST_HASH) as server, aiohttp.ClientSession() as http:
        server.sessions.failure_delay_s = 0.0
        for guess in ("a", "b", "c"):
            async with http.post(url(server, "/login"), data={"password": guess}, allow_redirects=False) as r:
                assert r.status == 303
    lines = [r.getMessage() for r in caplog.records if "failed login" in r.getMessage()]
    assert lines == ["web: 1 failed login(s), the last from 127.0.0.1"]  # the next two wait for the next minute


async def test_every_route_refuses_methods_that_could_change_anything(tmp_path: Path) -> None:
    paths = [
        "/",
        "/ws",
        "/static/app.js",
        "/api/snapshot",
        "/api/raw/main-meter",
        "/api/site",
        "/api/action/probe",
        "/logout",
    ]
    async with serving(tmp_path) as server, aiohttp.ClientSession() as http:
        for path in [*paths, "/login"]:
            for method in ("PUT", "DELETE", "PATCH", *(["POST"] if path != "/login" else [])):
                async with http.request(method, url(server, path), data=b"x") as r:
                    assert r.status == 405, (method, path)


async def test_the_validate_and_plan_views_run_the_commands(tmp_path: Path) -> None:
    async with serving(tmp_path) as server, aiohttp.ClientSession() as http:
        async with http.get(url(server, "/api/action/validate")) as r:
            body = await r.json()
        assert body["exit_code"] == 0 and body["command"].startswith("energy-agent validate ")
        assert "main-meter: profile generic-3ph-meter" in body["output"]
        async with http.get(url(server, "/api/action/plan?device=main-meter")) as r:
            body = await r.json()
        assert body["exit_code"] == 0 and "requests per poll" in body["output"]
        async with http.get(url(server, "/api/action/probe?device=nosuch")) as r:
            assert r.status == 404
        async with http.get(url(server, "/api/action/probe?device=rtu-meter")) as r:
            assert r.status == 409 and "on serial bus rs485-1" in await r.text()  # the agent holds the port
        async with http.get(url(server, "/api/action/reboot")) as r:
            assert r.status == 404


async def test_connections_over_the_bound_are_refused_and_cross_origin_sockets_too(tmp_path: Path) -> None:
    async with serving(tmp_path, max_clients=2) as server, aiohttp.ClientSession() as a, aiohttp.ClientSession() as b:
        async with a.ws_connect(url(server, "/ws")) as one, b.ws_connect(url(server, "/ws")) as two:
            await one.receive(timeout=5)
            await two.receive(timeout=5)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /api/snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 503")
            writer.close()
        async with aiohttp.ClientSession() as c:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await c.ws_connect(url(server, "/ws"), headers={"Origin": "http://evil.example"})
            assert refused.value.status == 403


async def test_a_connection_that_says_nothing_is_closed_and_frees_its_slot(tmp_path: Path) -> None:
    async with serving(tmp_path, max_clients=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line that ends the head
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server after header_timeout_s
        writer.close()
        async with aiohttp.ClientSession() as http, http.get(url(server, "/api/snapshot")) as r:
            assert r.status == 200  # the slot is free again


async def test_client_certificates_required_when_configured(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = WebTlsConfig(cert_file=str(pki.server_cert), key_file=str(pki.server_key), client_ca=str(pki.ca))
    async with serving(tmp_path, tls=tls.model_dump(), host="127.0.0.1") as server:
        https = f"https://127.0.0.1:{server.port}/api/snapshot"
        bare = ssl.create_default_context(cafile=str(pki.ca))
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.get(https, ssl=bare) as r:
                    await r.read()
        with_cert = ssl.create_default_context(cafile=str(pki.ca))
        with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        async with aiohttp.ClientSession() as http, http.get(https, ssl=with_cert) as r:
            assert r.status == 200
