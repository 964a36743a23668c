"""The running agent as the web page sees it (``agent.web.view.AgentView``), and the page's start inside ``Agent.run``.

Read-only by construction: every method returns copies of figures the agent keeps anyway; raw registers come from
the Modbus pollers' capture of their last poll (turned on for a device the first time the page asks for them). Hints for faults are
injected by the command that started the agent (``energy-agent run`` passes probe's), since the runtime sits
below the commands.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from agent import __version__
from agent.config.load import LoadedSite
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.site import ModbusDeviceConfig, SerialBusConfig
from agent.runtime.monitor import LoopLagMonitor
from agent.sources.modbus.device import DevicePoller
from agent.web.live import LiveState, LogRing
from agent.web.view import DeviceInfo

log = logging.getLogger("agent.web")

Hints = Callable[[list[str]], list[str]]
RECENT_LAG_TICKS = 40  # the loop-lag monitor ticks every 0.25 s: the last 10 s
SERIAL_NOTE = (
    "on serial bus {bus}, whose port the running agent holds: a second reader would garble both; the points "
    "above are this device's live values (raw registers on demand)"
)


class RunningAgent(Protocol):
    """What the page reads of the running agent (``agent.runtime.agent.Agent``), read-only."""

    site_path: Path
    loaded: LoadedSite
    boot: str
    started_ts: float
    reloaded_ts: float | None
    loop_lag: LoopLagMonitor
    live: LiveState | None  # set while the page is served

    def health(self) -> dict[str, Any]: ...

    def modbus_pollers(self) -> list[DevicePoller]: ...


class AgentWebView:
    def __init__(self, agent: RunningAgent, hints: Hints | None) -> None:
        self._agent = agent
        self._hints = hints

    @property
    def site_path(self) -> Path:
        return self._agent.site_path

    def meta(self) -> dict[str, Any]:
        a = self._agent
        site = a.loaded.site
        return {
            "version": __version__,
            "site": site.site,
            "gateway": site.gateway,
            "timezone": site.timezone,
            "boot": a.boot,
            "started_ts": a.started_ts,
            "reloaded_ts": a.reloaded_ts,
        }

    def devices(self) -> list[DeviceInfo]:
        out = []
        serial = {b.name for b in self._agent.loaded.site.buses if isinstance(b, SerialBusConfig)}
        for d in self._agent.loaded.site.devices:
            if isinstance(d, ModbusDeviceConfig):
                where = f"{d.host}:{d.port}" if d.host is not None else f"bus {d.bus}"
                note = SERIAL_NOTE.format(bus=d.bus) if d.bus in serial else ""
                out.append(DeviceInfo(d.name, "modbus", f"{where} unit {d.unit_id}", d.interval_s, d.enabled, note))
            elif isinstance(d, OpcuaDeviceConfig):
                out.append(DeviceInfo(d.name, "opcua", d.endpoint, d.interval_s, d.enabled))
            else:  # a protocol added later: listed with what every device config has
                name = str(getattr(d, "name", "?"))
                protocol = str(getattr(d, "protocol", "other"))
                interval = float(getattr(d, "interval_s", 0.0))
                out.append(DeviceInfo(name, protocol, "", interval, bool(getattr(d, "enabled", True))))
        return out

    def health(self) -> dict[str, Any]:
        health = self._agent.health()
        recent = sorted(self._agent.loop_lag.lag.last(RECENT_LAG_TICKS))
        if recent:  # the last ~10 s: what the page (and the 50-viewer test) compares, not the whole 2048 ring
            health["loop_lag_recent_s"] = {"p99": recent[min(len(recent) - 1, round(0.99 * (len(recent) - 1)))]}
            health["loop_lag_recent_s"]["max"] = recent[-1]
        return health

    def raw_registers(self, device: str) -> dict[str, str] | None:
        """Raw registers on demand: the first ask turns on the poller's capture (off otherwise: no cost), so they
        come with the next poll; until then, and for a device that is not a running Modbus one, None."""
        for poller in self._agent.modbus_pollers():
            if poller.name == device:
                poller.capture_raw = True
                return {point: _hex(raw) for point, raw in poller.raw.items()} or None
        return None

    def hints(self, reasons: list[str]) -> list[str]:
        return self._hints(reasons) if self._hints is not None else []


def _hex(raw: bytes) -> str:
    if len(raw) == 1:  # a coil or discrete input
        return str(raw[0])
    return " ".join(raw[i : i + 2].hex().upper() for i in range(0, len(raw), 2))


@contextlib.asynccontextmanager
async def web_page(agent: RunningAgent, hints: Hints | None) -> AsyncIterator[Any]:
    """Serve the page while the block runs, when ``web.enabled``; yields the server (or None). The log panel's
    handler is on the root logger only meanwhile."""
    config = agent.loaded.site.web
    if config is None or not config.enabled:
        yield None
        return
    from agent.web.server import WebServer  # aiohttp is imported only by agents that serve the page

    ring = LogRing()
    live = LiveState()
    try:
        server = WebServer(config, AgentWebView(agent, hints), live, ring, agent.site_path.parent)
    except (OSError, ValueError, ssl.SSLError) as exc:  # polling matters more than the page: the agent goes on
        log.error("web: the page is not served: %s", exc)
        yield None
        return
    root = logging.getLogger()
    root.addHandler(ring)
    agent.live = live
    try:
        async with server as web:
            yield web
    finally:
        root.removeHandler(ring)
        agent.live = None
