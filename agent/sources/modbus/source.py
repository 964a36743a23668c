"""ModbusSource: the runtime unit for Modbus, one per TCP device and one per serial bus or TCP gateway.

A source owns one ``ModbusLink`` and polls its devices one request at a time (a bus's ``pause_ms`` between any
two requests; on a serial bus at least 3.5 character times). Devices keep their own wall-clock aligned schedule
(``schedule.py``); when several are due, the earliest slot goes first. Each poll's ``PollResult`` is handed to
``emit`` before the next poll starts (back-pressure reaches the bus, never piles up in memory).

Lifecycle: ``run(emit)`` connects on first use and polls until cancelled; it closes the link on the way out.
On a reload, ``adopt(fresh)`` takes the devices of a newly built source for the same link while ``run`` goes on:
changed devices restart, added ones start, removed ones stop, and the others keep their schedule and health (a
changed bus or gateway itself restarts the whole source).
Device faults never raise out of ``run`` (they become bad samples, counters and one log line per state change).
``health()`` may be called from the same event loop at any time.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import chain
from typing import Protocol, TypeVar

from agent.config.dtu import DtuBusConfig
from agent.config.profile import ProfileConfig
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, SiteConfig, TcpGatewayConfig
from agent.errors import ConfigError
from agent.model import DeviceHealth, PollResult
from agent.sources.base import Emit, Polling
from agent.sources.modbus.device import DevicePoller, Wait
from agent.sources.modbus.link import ModbusLink
from agent.sources.modbus.plan import ReadPlan, build_read_plan
from agent.sources.modbus.schedule import Clock, SystemClock, device_phase_s, first_slot, next_slot, poll_steps, realign


class LoadedSiteLike(Protocol):
    """What we need of agent.config.load.LoadedSite (written elsewhere)."""

    @property
    def site(self) -> SiteConfig: ...

    @property
    def profiles(self) -> Mapping[str, ProfileConfig]: ...


class BusPoller(Protocol):
    """One device of a bus source: a Modbus ``DevicePoller``, or another protocol's poller that speaks through
    ``ModbusLink.exchange`` (DL/T 645 meters sharing the bus, built by the runtime)."""

    @property
    def name(self) -> str: ...

    @property
    def interval_s(self) -> float: ...

    @property
    def consecutive_failures(self) -> int: ...

    phase_s: float  # offset of its slots within the interval (schedule.device_phase_s); set by the builder

    def count(self, kind: str, n: int = 1) -> None: ...

    def poll(self, link: ModbusLink, before_request: Wait) -> Awaitable[PollResult]: ...

    def backing_off(self, ts: float) -> PollResult: ...

    def health(self) -> DeviceHealth: ...


_P = TypeVar("_P", bound=BusPoller)


class ModbusSource:
    """Polls the devices behind one link. Build with ``build_modbus_sources``."""

    def __init__(
        self,
        name: str,
        pollers: Sequence[DevicePoller],
        link_factory: Callable[[], ModbusLink],
        pause_s: float,
        clock: Clock,
        fingerprint: str,
        link_fingerprint: str = "",
        device_fingerprints: Mapping[str, str] | None = None,
        others: Sequence[BusPoller] = (),
    ) -> None:
        self._name = name
        self.pollers = list(pollers)  # the Modbus devices
        self.others: list[BusPoller] = list(others)  # other protocols' devices on this bus (DL/T 645)
        self.link_fingerprint = link_fingerprint or fingerprint  # the link's own config (bus or gateway)
        self.device_fingerprints = dict(device_fingerprints or {})
        self._link_factory = link_factory
        self.pause_s = pause_s
        self.clock = clock
        self._fingerprint = fingerprint
        self.link: ModbusLink | None = None
        self.polling = Polling()  # the runtime's, shared by its sources (the group commit's "burst complete")

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def every(self) -> list[BusPoller]:
        """Every device of the source, Modbus first (the tie-break when two are due at once)."""
        return [*self.pollers, *self.others]

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.every)

    def health(self) -> list[DeviceHealth]:
        result = []
        late = self.link.stats.late_by_unit if self.link is not None else {}
        for poller in self.every:
            h = poller.health()
            n = late.get(poller.config.unit_id, 0) if isinstance(poller, DevicePoller) else 0
            if n:  # a late reply carries the unit id of the device that answered too late
                h.errors_by_kind["late_reply"] = n
            result.append(h)
        return result

    async def _before_request(self) -> None:
        if self.pause_s > 0 and self.link is not None:
            wait = self.link.idle_since + self.pause_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                # the pause is a floor (an RTU device needs the silence), and uvloop's timers have millisecond
                # granularity: one that woke a little early sleeps out the rest
                if (rest := self.link.idle_since + self.pause_s - time.monotonic()) > 0:
                    await asyncio.sleep(rest + 0.001)

    def _pause(self) -> Wait:  # what a poll awaits before each request: the bus pause, or nothing (most TCP links)
        return self._before_request if self.pause_s > 0 else None

    def _link(self) -> ModbusLink:
        if self.link is None:
            self.link = self._link_factory()
        return self.link

    def adopt(self, fresh: ModbusSource) -> tuple[list[str], list[str], list[str]] | None:
        """Take ``fresh``'s devices while running (same link config): (restarted, started, stopped) device names,
        or None when the link itself changed (the caller restarts the whole source)."""
        if fresh.link_fingerprint != self.link_fingerprint or not fresh.device_fingerprints:
            return None
        restarted: list[str] = []
        started: list[str] = []
        pollers = self._adopted(self.pollers, fresh.pollers, fresh, restarted, started)
        others = self._adopted(self.others, fresh.others, fresh, restarted, started)
        kept = {p.name for p in fresh.every}
        stopped = [p.name for p in self.every if p.name not in kept]
        self.pollers, self.others = pollers, others
        self.device_fingerprints = dict(fresh.device_fingerprints)
        self._fingerprint = fresh.fingerprint
        return restarted, started, stopped

    def _adopted(
        self, mine: list[_P], theirs: list[_P], fresh: ModbusSource, restarted: list[str], started: list[str]
    ) -> list[_P]:
        by_name = {p.name: p for p in mine}
        out = []
        for p in theirs:
            old = by_name.get(p.name)
            if old is not None and self.device_fingerprints.get(p.name) == fresh.device_fingerprints.get(p.name):
                out.append(old)  # unchanged: same poller, same schedule, same health
            else:
                out.append(p)
                (restarted if old is not None else started).append(p.name)
        return out

    async def aclose(self) -> None:
        """Close the link (``run`` does this itself on the way out)."""
        if self.link is not None:
            await self.link.close()

    async def poll_once(self, poller: BusPoller) -> PollResult:
        """Poll one device now (the probe command, tests)."""
        return await self._link_poll(poller)

    async def _link_poll(self, poller: BusPoller) -> PollResult:
        return await poller.poll(self._link(), self._pause())

    async def run(self, emit: Emit) -> None:
        """Every device yields a result at each of its slots: a poll, or, in a slot that its backoff leaves out,
        every point bad with "backing off: <why>" (no request is sent), so a gap is visible as it happens."""
        link = self._link()
        # by poller object: a poller adopted on a reload starts its own schedule, a removed one is never polled
        due: dict[BusPoller, float] = {}  # the device's next slot
        poll_at: dict[BusPoller, float] = {}  # the next slot that sends requests (later while backing off)
        try:
            while True:
                now = self.clock.now()
                every = self.every
                for p in every:
                    if p not in due:
                        due[p] = poll_at[p] = first_slot(now, p.interval_s, p.phase_s)
                    # a clock set back leaves slots far ahead: start again from now
                    due[p] = realign(due[p], now, p.interval_s, 0, p.phase_s)
                    poll_at[p] = realign(poll_at[p], now, p.interval_s, p.consecutive_failures, p.phase_s)
                poller = every[0]
                if len(every) > 1:
                    order = {p: i for i, p in enumerate(every)}
                    poller = min(every, key=lambda p: (due[p], order[p]))
                slot = due[poller]
                await self.clock.sleep_until(slot)
                if poller not in self.every:  # removed by a reload while we slept
                    continue
                if slot < poll_at[poller]:
                    poller.count("backoff_skipped")
                    await emit(poller.backing_off(slot))
                    step = next_slot(slot, self.clock.now(), poller.interval_s, 0, poller.phase_s)
                else:
                    polling = self.polling
                    polling.start()
                    try:
                        result = await poller.poll(link, self._pause())
                        await emit(result)
                    finally:
                        polling.done()
                    step = next_slot(
                        slot, self.clock.now(), poller.interval_s, poller.consecutive_failures, poller.phase_s
                    )
                    poll_at[poller] = step.at
                if step.missed:
                    poller.count("missed_slot", step.missed)
                due[poller] = step.at - step.backoff_skipped * poller.interval_s
                if len(due) > len(self.every):  # pollers a reload removed
                    for gone in set(due).difference(self.every):
                        del due[gone], poll_at[gone]
        finally:
            await link.close()


_POINT_PATH = re.compile(r"^points\[(\d+)\]$")


def plan_device(loaded: LoadedSiteLike, device: ModbusDeviceConfig) -> ReadPlan:
    """``build_read_plan`` for a device of a loaded site; its errors point at the profile file's line when the
    loader can tell (agent.config.load.LoadedSite.profile_issue)."""
    try:
        return build_read_plan(loaded.profiles[device.profile], device)
    except ConfigError as exc:
        locate = getattr(loaded, "profile_issue", None)
        if locate is None:
            raise
        issues = []
        for issue in exc.issues:
            match = _POINT_PATH.match(issue.path)
            issues.append(locate(device.profile, ("points", int(match.group(1))), issue.message) if match else issue)
        raise ConfigError(issues) from None


def _fingerprint(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _rtu_silence_s(bus: SerialBusConfig) -> float:
    bits = 1 + bus.bytesize + (0 if bus.parity == "N" else 1) + bus.stopbits
    return 3.5 * bits / bus.baudrate if bus.baudrate <= 19200 else 0.00175


class DtuLinks(Protocol):
    """Links of buses behind dial-in DTUs (the runtime's, over its DTU listener)."""

    @property
    def fingerprint(self) -> str:
        """Changes when the listener does; the DTU buses' sources restart with it."""
        ...

    def link_factory(self, bus: DtuBusConfig) -> Callable[[], ModbusLink]: ...


def build_modbus_sources(
    loaded: LoadedSiteLike,
    clock: Clock | None = None,
    *,
    plans: Mapping[str, ReadPlan] | None = None,
    others: Mapping[str, Sequence[BusPoller]] | None = None,
    dtu_links: DtuLinks | None = None,
) -> list[ModbusSource]:
    """One source per Modbus TCP device (``host``) and one per bus or gateway (``bus``) with its enabled devices.
    ``plans`` are the read plans by device name from the compile step (``agent.runtime.compile``); without them
    each is built here, raising ConfigError when one cannot be. ``others`` are pollers of other protocols by bus
    name (DL/T 645 meters), polled in the same queue; ``dtu_links`` makes the link of a bus behind a dial-in DTU
    (without it such buses are left out)."""
    clock = clock or SystemClock()

    def plan_of(device: ModbusDeviceConfig) -> ReadPlan:
        return plans[device.name] if plans is not None else plan_device(loaded, device)

    site = loaded.site
    threshold = site.monitoring.failure_threshold

    others = others or {}
    polled = [d.interval_s for d in site.devices if isinstance(d, ModbusDeviceConfig) and d.enabled]
    step_s = poll_steps(site.poll_phase_step_ms, polled + [o.interval_s for o in chain(*others.values())])

    def phase_of(name: str, interval_s: float) -> float:  # part of the device's fingerprint: a change restarts it
        return 0.0 if site.poll_phase == "aligned" else device_phase_s(name, interval_s, step_s(interval_s))

    buses = {b.name: b for b in site.buses}
    sources: list[ModbusSource] = []
    by_bus: dict[str, list[ModbusDeviceConfig]] = {}
    for device in site.devices:
        if not isinstance(device, ModbusDeviceConfig) or not device.enabled:
            continue
        if device.host is not None:
            profile = loaded.profiles[device.profile]
            endpoint = f"{device.host}:{device.port}"
            phase = phase_of(device.name, device.interval_s)
            poller = DevicePoller(device, plan_of(device), endpoint, clock.now, threshold, phase)
            host, port = device.host, device.port
            sources.append(
                ModbusSource(
                    device.name,
                    [poller],
                    lambda host=host, port=port: ModbusLink.tcp(host, port),  # type: ignore[misc]
                    0.0,
                    clock,
                    _fingerprint(device.model_dump_json(), profile.model_dump_json(), repr(phase)),
                )
            )
        else:
            assert device.bus is not None
            by_bus.setdefault(device.bus, []).append(device)
    for bus_name in [*by_bus, *(b for b in others if b not in by_bus)]:
        bus = buses[bus_name]
        devices = by_bus.get(bus_name, [])
        extra = list(others.get(bus_name, ()))
        parts = [bus.model_dump_json()]
        pollers = []
        device_fingerprints = {}
        endpoint = _endpoint(bus)
        for device in devices:
            phase = phase_of(device.name, device.interval_s)
            own = [device.model_dump_json(), loaded.profiles[device.profile].model_dump_json(), repr(phase)]
            parts += own
            device_fingerprints[device.name] = _fingerprint(*own)
            pollers.append(DevicePoller(device, plan_of(device), endpoint, clock.now, threshold, phase))
        for other in extra:  # a DL/T 645 meter: its config with the profile's points bound to it
            other.phase_s = phase_of(other.name, other.interval_s)  # the same stable phase as the Modbus devices
            config = getattr(other, "config", None)
            own = [config.model_dump_json() if config is not None else other.name, repr(getattr(config, "points", ()))]
            own.append(repr(other.phase_s))
            parts += own
            device_fingerprints[other.name] = _fingerprint(*own)
        link = _fingerprint(bus.model_dump_json(), str(threshold))
        if isinstance(bus, DtuBusConfig):
            if dtu_links is None:
                continue
            factory = dtu_links.link_factory(bus)
            link = _fingerprint(link, dtu_links.fingerprint)  # the listener's: restarted with it
            parts.append(dtu_links.fingerprint)
        else:
            factory = _bus_link_factory(bus)
        sources.append(
            ModbusSource(
                bus_name,
                pollers,
                factory,
                _bus_pause_s(bus),
                clock,
                _fingerprint(*parts),
                link,
                device_fingerprints,
                others=extra,
            )
        )
    return sources


def _endpoint(bus: SerialBusConfig | TcpGatewayConfig | DtuBusConfig) -> str:
    if isinstance(bus, SerialBusConfig):
        return bus.port
    if isinstance(bus, DtuBusConfig):
        return f"DTU {bus.name}"
    return f"{bus.host}:{bus.port}"


def _bus_pause_s(bus: SerialBusConfig | TcpGatewayConfig | DtuBusConfig) -> float:
    if isinstance(bus, SerialBusConfig):
        return max(bus.pause_ms / 1000.0, _rtu_silence_s(bus))
    return bus.pause_ms / 1000.0


def _bus_link_factory(bus: SerialBusConfig | TcpGatewayConfig) -> Callable[[], ModbusLink]:
    if isinstance(bus, SerialBusConfig):
        return lambda: ModbusLink.serial(bus.port, bus.baudrate, bus.parity, bus.stopbits, bus.bytesize)
    return lambda: ModbusLink.tcp(bus.host, bus.port, bus.framing)
