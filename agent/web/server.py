"""The web page's server: aiohttp on the agent's event loop, read-only.

Routes (every one GET, except ``POST /login``; anything else answers 405):
``/`` the page, ``/static/*`` its files, ``/ws`` the WebSocket that pushes the ``live`` frame every
``PUSH_INTERVAL_S`` and the ``kpi`` frame when the KPIs changed, ``/api/snapshot`` both frames as JSON,
``/api/raw/{device}`` the raw registers of a device's last poll (202 until a poll captured them), ``/api/site`` the site file with secrets masked,
``/api/action/{probe|plan|validate}?device=`` the commissioning views (child processes, see ``actions``),
``/login`` and ``/logout``. Nothing here can write to a device or change the configuration.

Guarding the pollers: at most ``max_clients`` connections (more are answered 503 and closed), a connection that
sends no request head within ``HEADER_TIMEOUT_S`` closed, request bodies of at most 16 KiB, idle keep-alive
closed after 15 s, and each frame encoded once for all viewers; a viewer that does
not take a frame within ``SEND_TIMEOUT_S`` is disconnected, and a slow viewer only ever has the newest frame
waiting (no queue grows). Authentication: when a password is configured (required off loopback), every route but
``/login`` needs the session cookie; TLS client certificates, when configured, are checked in the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from agent.config.web import WebConfig
from agent.web.actions import ACTIONS, Actions
from agent.web.auth import Sessions, load_password_hash, tls_context
from agent.web.live import LiveState, LogRing
from agent.web.mask import mask_secrets
from agent.web.view import AgentView, kpi_frame, live_frame

log = logging.getLogger("agent.web")

PUSH_INTERVAL_S = 1.0
SEND_TIMEOUT_S = 5.0
HEADER_TIMEOUT_S = 10.0
COOKIE = "energy_agent_session"
STATIC_FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "index.html": "text/html",
    "login.html": "text/html",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes:
    return resources.files("agent.web").joinpath("static", name).read_bytes()


class _Refuse(asyncio.Protocol):
    """A connection over ``max_clients``: answered 503 and closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.close()


def _drop_if_silent(handler: Any) -> None:
    """A connection that sent no complete request head in time holds a slot for nothing: close it. (aiohttp has
    no header timeout; ``_request_count`` is its count of request heads parsed on this connection. Should it go,
    nothing is closed here and the connection bound still holds.)"""
    if getattr(handler, "_request_count", 1) == 0 and getattr(handler, "transport", None) is not None:
        handler.force_close()


class _Viewer:
    """One WebSocket viewer: the newest frame waiting for it (never a queue), and a flag to send it."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.ready = asyncio.Event()

    def offer(self, frame: bytes, keep_kpi: bool = False) -> None:
        self.pending = [*self.pending[:1], frame] if keep_kpi else [frame]
        self.ready.set()


class WebServer:
    """``async with WebServer(config, view, live, log_ring, site_dir) as web:`` listens; ``await web.run()`` pushes
    frames to the viewers until cancelled."""

    def __init__(
        self,
        config: WebConfig,
        view: AgentView,
        live: LiveState,
        log_ring: LogRing | None,
        site_dir: Path,
        *,
        push_interval_s: float = PUSH_INTERVAL_S,
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.view = view
        self.live = live
        self.log_ring = log_ring
        self.push_interval_s = push_interval_s
        self.header_timeout_s = header_timeout_s
        self.password_hash = load_password_hash(config, site_dir)
        self.ssl = tls_context(config, site_dir)
        self.sessions = Sessions(config.session_ttl_s)
        self.actions = Actions(view.site_path)
        self.viewers: set[_Viewer] = set()
        self.port = config.port
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._kpi_sent = -1
        self.frames_sent = 0
        self.push_s: deque[float] = deque(maxlen=60)  # how long building and encoding the last pushes took
        self._failed_logins = 0
        self._failed_logged_at = -math.inf

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> WebServer:
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None, keepalive_timeout=15.0)
        await runner.setup()
        self._runner = runner
        http = runner.server
        assert http is not None
        limit = self.config.max_clients

        loop = asyncio.get_running_loop()

        def connection() -> asyncio.Protocol:
            if len(http.connections) >= limit:
                return _Refuse()
            handler = http()
            loop.call_later(self.header_timeout_s, _drop_if_silent, handler)
            return handler

        self._server = await loop.create_server(
            connection, self.config.host, self.config.port, ssl=self.ssl, backlog=128, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.ssl is not None else "http"
        guard = (
            "password"
            if self.password_hash
            else (
                "client certificates"
                if self.ssl is not None and self.config.tls and self.config.tls.client_ca
                else "no login"
            )
        )
        log.info("web: serving the read-only page on %s://%s:%d/ (%s)", scheme, self.config.host, self.port, guard)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._server is not None:
            await self._server.wait_closed()

    async def run(self) -> None:
        """Push the live frame every ``push_interval_s`` (and the KPI frame when it changed) while anyone watches."""
        while True:
            await asyncio.sleep(self.push_interval_s)
            if self.viewers:
                self.push()

    def push(self) -> None:
        start = time.perf_counter()
        kpi_changed = self.live.kpi_revision != self._kpi_sent
        frame = orjson.dumps(self._live())
        kpi = orjson.dumps(kpi_frame(self.live)) if kpi_changed else None
        self.push_s.append(time.perf_counter() - start)
        self._kpi_sent = self.live.kpi_revision
        for viewer in self.viewers:
            if kpi is not None:
                viewer.offer(kpi)
                viewer.offer(frame, keep_kpi=True)
            else:
                viewer.offer(frame, keep_kpi=len(viewer.pending) == 2)

    def _live(self) -> dict[str, Any]:
        frame = live_frame(self.view, self.live, self.log_ring)
        frame["meta"]["login"] = self.needs_login
        pushes = sorted(self.push_s)
        frame["web"] = {
            "viewers": len(self.viewers),
            "push_ms_p50": round(pushes[len(pushes) // 2] * 1000, 2) if pushes else None,
            "push_ms_max": round(pushes[-1] * 1000, 2) if pushes else None,
        }
        return frame

    # ---- the application -------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024, middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_get("/logout", self._logout)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/snapshot", self._snapshot)
        app.router.add_get("/api/raw/{device}", self._raw)
        app.router.add_get("/api/site", self._site)
        app.router.add_get("/api/action/{action}", self._action)
        return app

    @property
    def needs_login(self) -> bool:
        return self.password_hash is not None

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        open_paths = ("/login", "/static/style.css")
        if self.needs_login and request.path not in open_paths and not self.sessions.valid(request.cookies.get(COOKIE)):
            if request.path == "/" and request.method in ("GET", "HEAD"):
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="log in first: /login\n", headers=_HEADERS)
        response = await handler(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_static("index.html"), content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC_FILES.get(name)
        if kind is None:
            raise web.HTTPNotFound()
        return web.Response(body=_static(name), content_type=kind, charset="utf-8")

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        if not self.needs_login:
            raise web.HTTPSeeOther("/")
        page = _static("login.html")
        if "failed" in request.query:
            page = page.replace(b"<!--failed-->", '<p class="reason">Wrong password / 密码错误</p>'.encode())
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self.password_hash is None:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        password = form.get("password")
        token = (
            await self.sessions.login(password, self.password_hash) if isinstance(password, str) and password else None
        )
        if token is None:
            self._note_failed_login(request.remote)
            raise web.HTTPSeeOther("/login?failed=1")
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.config.session_ttl_s),
            httponly=True,
            samesite="Strict",
            secure=self.ssl is not None,
            path="/",
        )
        raise response

    def _note_failed_login(self, remote: str | None) -> None:
        """Logged once per minute at most, with the count since the last line: a guesser cannot flood the journal."""
        self._failed_logins += 1
        now = time.monotonic()
        if now - self._failed_logged_at >= 60.0:
            log.warning("web: %d failed login(s), the last from %s", self._failed_logins, remote)
            self._failed_logins, self._failed_logged_at = 0, now

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self.sessions.logout(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/login" if self.needs_login else "/")
        response.del_cookie(COOKIE, path="/")
        raise response

    def _same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser page (curl, a test client)
        host = request.headers.get("Host", "")
        return origin.split("://", 1)[-1] == host

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="cross-origin WebSocket refused\n")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        viewer = _Viewer()
        viewer.offer(orjson.dumps(kpi_frame(self.live)))
        viewer.offer(orjson.dumps(self._live()), keep_kpi=True)
        self.viewers.add(viewer)
        sender = asyncio.create_task(self._send(ws, viewer), name="web-viewer")
        try:
            async for msg in ws:  # viewers say nothing; this only notices their close
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.viewers.discard(viewer)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send(self, ws: web.WebSocketResponse, viewer: _Viewer) -> None:
        while not ws.closed:
            await viewer.ready.wait()
            viewer.ready.clear()
            frames, viewer.pending = viewer.pending, []
            try:
                for frame in frames:
                    await asyncio.wait_for(ws.send_bytes(frame), SEND_TIMEOUT_S)
                    self.frames_sent += 1
            except (TimeoutError, ConnectionError):
                await ws.close()
                return

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        body = {"live": self._live(), "kpi": kpi_frame(self.live)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _raw(self, request: web.Request) -> web.StreamResponse:
        device = request.match_info["device"]
        if device not in {d.name for d in self.view.devices()}:
            raise web.HTTPNotFound(text=f"no device named {device}\n")
        raw = self.view.raw_registers(device)
        if raw is None:  # captured from the next poll on (or not a running Modbus device)
            return web.Response(status=202, text="no raw registers yet; ask again after the next poll\n")
        return web.Response(body=orjson.dumps(raw), content_type="application/json")

    async def _site(self, request: web.Request) -> web.StreamResponse:
        text = await asyncio.to_thread(self.view.site_path.read_text, encoding="utf-8")
        return web.Response(text=mask_secrets(text), content_type="text/plain", charset="utf-8")

    async def _action(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        device = request.query.get("device") or None
        if action not in ACTIONS:
            raise web.HTTPNotFound(text=f"no action {action}; known: {', '.join(ACTIONS)}\n")
        known = {d.name: d for d in self.view.devices()}
        if device is not None and device not in known:
            raise web.HTTPNotFound(text=f"no device named {device}\n")
        if action == "probe" and device is None:
            raise web.HTTPBadRequest(text="probe needs ?device=NAME\n")
        if action == "probe" and device is not None and known[device].probe_note:
            raise web.HTTPConflict(text=f"{device}: not probed: {known[device].probe_note}\n")
        if self.actions.busy:
            raise web.HTTPTooManyRequests(text="another view is running; try again in a moment\n")
        result = await self.actions.run(action, device)
        body: dict[str, Any] = {"command": result.command, "exit_code": result.exit_code, "output": result.output}
        return web.Response(body=orjson.dumps(body), content_type="application/json")
