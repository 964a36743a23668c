"""Puts the devices of every bus together: Modbus devices (``agent.sources.modbus``), DL/T 645 meters
(``agent.sources.dlt645``) polled in the same one-request-at-a-time queue through the bus's link, and the DTU
listener (``agent.sources.dtu``) that buses behind dial-in 4G DTUs read and write through.

The listener is kept across reloads while its fingerprint (its config and every DTU's registration) is unchanged,
so the DTU buses' sources that a reload keeps still talk through the socket that is listening; when it changes,
the listener and every DTU bus restart together (their fingerprints include the listener's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.dtu import DtuBusConfig
from agent.config.load import LoadedSite
from agent.sources.base import Source
from agent.sources.dlt645.device import Dlt645Poller
from agent.sources.dtu import DtuListener
from agent.sources.modbus.link import ModbusLink
from agent.sources.modbus.plan import ReadPlan
from agent.sources.modbus.schedule import Clock, SystemClock
from agent.sources.modbus.source import BusPoller, ModbusSource, build_modbus_sources

_LISTENERS: dict[tuple[Path, str], DtuListener] = {}


class ListenerLinks:
    """``DtuLinks`` over one listener."""

    def __init__(self, listener: DtuListener) -> None:
        self.listener = listener

    @property
    def fingerprint(self) -> str:
        return self.listener.fingerprint

    def link_factory(self, bus: DtuBusConfig) -> Callable[[], ModbusLink]:
        listener, name = self.listener, bus.name

        async def open_stream(
            on_data: Callable[[bytes], None], on_lost: Callable[[BaseException | None], None]
        ) -> tuple[Callable[[bytes], None], Callable[[], None]]:
            return await listener.open_stream(name, on_data, on_lost)

        return lambda: ModbusLink.over(f"DTU {name}", "rtu", open_stream)


def dtu_listener(loaded: LoadedSite) -> DtuListener | None:
    """The site's listener (the one already built for this file when nothing about it changed)."""
    config = loaded.site.dtu_listener
    dtus = {b.name: b for b in loaded.site.buses if isinstance(b, DtuBusConfig)}
    if config is None or not dtus:
        return None
    fresh = DtuListener.from_buses(config, dtus)
    key = (loaded.path.resolve(), fresh.fingerprint)
    for old in [k for k in _LISTENERS if k[0] == key[0] and k != key]:
        del _LISTENERS[old]
    return _LISTENERS.setdefault(key, fresh)


def dlt645_pollers(loaded: LoadedSite, clock: Clock) -> dict[str, list[BusPoller]]:
    """The enabled DL/T 645 meters' pollers by bus name, in file order."""
    site = loaded.site
    tz = ZoneInfo(site.timezone)
    buses = {b.name: b for b in site.buses}
    out: dict[str, list[BusPoller]] = {}
    for device in site.devices:
        if not isinstance(device, Dlt645DeviceConfig) or not device.enabled:
            continue
        profile = loaded.dlt645_profiles[device.profile]
        bus = buses[device.bus]
        endpoint = getattr(bus, "port", None) if bus.transport == "rtu" else None
        if endpoint is None:
            endpoint = f"DTU {bus.name}" if isinstance(bus, DtuBusConfig) else f"{bus.host}:{bus.port}"  # type: ignore[union-attr]
        poller = Dlt645Poller(
            device,
            device.effective_version(profile),
            str(endpoint),
            clock.now,
            tz,
            site.monitoring.failure_threshold,
        )
        out.setdefault(device.bus, []).append(poller)
    return out


def build_bus_sources(
    loaded: LoadedSite, plans: Mapping[str, ReadPlan] | None = None, clock: Clock | None = None
) -> list[Source]:
    """Every Modbus and DL/T 645 source of the site, and the DTU listener first when the site has DTU buses."""
    clock = clock or SystemClock()
    listener = dtu_listener(loaded)
    links = ListenerLinks(listener) if listener is not None else None
    sources: list[Source] = [listener] if listener is not None else []
    modbus: list[ModbusSource] = build_modbus_sources(
        loaded, clock, plans=plans, others=dlt645_pollers(loaded, clock), dtu_links=links
    )
    return [*sources, *modbus]
