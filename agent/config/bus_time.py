"""How long one polling cycle of all devices on an RS-485 bus takes, estimated before any I/O.

A serial bus carries one request at a time, so the cycle time is the sum over every request of every enabled
device on the bus of:

- the request frame, 8 characters (address, function, start, count, CRC);
- the response frame, 5 + 2*N characters for N registers, or 5 + ceil(N/8) for N coils / discrete inputs;
- 1 start bit + ``bytesize`` data bits + 1 parity bit unless parity is N + ``stopbits`` stop bits per character
  (8N1: 10 bits, 8E1 and 8N2: 11);
- the 3.5-character silence that ends each of the two frames (fixed at 1.75 ms above 19200 baud, as the Modbus
  serial line specification says);
- the bus ``pause_ms``;
- ``TURNAROUND_S``: the time a device takes to start answering. 10 ms is an assumption typical of meters and
  drives; slow PLCs take longer.

Requests per device come from the Modbus read plan (``agent.sources.modbus.plan.build_read_plan``) when that
module is present and accepts the profile; otherwise one request per point, which over-estimates.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.config.profile import ProfileConfig
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, SiteConfig
from agent.config.yaml_source import YamlDocument
from agent.errors import ConfigError, ConfigIssue

TURNAROUND_S = 0.010
REQUEST_CHARS = 8


@dataclass(frozen=True, slots=True)
class RequestSize:
    """One read request: how many registers (or bits, when ``bits``) it asks for."""

    count: int
    bits: bool = False


def character_bits(bus: SerialBusConfig) -> int:
    return 1 + bus.bytesize + (0 if bus.parity == "N" else 1) + bus.stopbits


def request_time_s(bus: SerialBusConfig, request: RequestSize) -> float:
    """Wire time of one request and its response, with silences, pause and device turnaround."""
    response = 5 + (math.ceil(request.count / 8) if request.bits else 2 * request.count)
    char_s = character_bits(bus) / bus.baudrate
    silence_s = 3.5 * char_s if bus.baudrate <= 19200 else 0.00175
    return (REQUEST_CHARS + response) * char_s + 2 * silence_s + bus.pause_ms / 1000 + TURNAROUND_S


def estimate_bus_cycle_s(bus: SerialBusConfig, requests: Iterable[RequestSize]) -> float:
    """Seconds one cycle of ``requests`` takes on ``bus``."""
    return sum(request_time_s(bus, r) for r in requests)


def device_requests(profile: ProfileConfig, device: ModbusDeviceConfig) -> list[RequestSize]:
    """The requests one poll of ``device`` makes: from the read plan if available, else one per point."""
    planned = _planned_requests(profile, device)
    if planned is not None:
        return planned
    return [RequestSize(p.type.registers(p.length), p.kind.is_bit) for p in profile.points]


def _planned_requests(profile: ProfileConfig, device: ModbusDeviceConfig) -> list[RequestSize] | None:
    try:
        plan_module: Any = importlib.import_module("agent.sources.modbus.plan")
    except ImportError:
        return None
    build = getattr(plan_module, "build_read_plan", None)
    if build is None:
        return None
    try:
        plan = build(profile, device)
    except ConfigError:
        return None  # the validate command reports the plan's own errors
    out: list[RequestSize] = []
    for request in plan.requests:
        count = _first_int(request, ("count", "quantity", "length", "size"))
        if count is None:
            return None
        bits = getattr(request, "function", None) in (1, 2) or bool(
            getattr(getattr(request, "kind", None), "is_bit", 0)
        )
        out.append(RequestSize(count, bits))
    return out


def _first_int(obj: object, names: Sequence[str]) -> int | None:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_bus_times(site: SiteConfig, profiles: Mapping[str, ProfileConfig], doc: YamlDocument) -> list[ConfigIssue]:
    """A warning at each serial bus whose estimated cycle is longer than the shortest interval polled on it."""
    issues: list[ConfigIssue] = []
    for i, bus in enumerate(site.buses):
        if not isinstance(bus, SerialBusConfig):
            continue
        devices = [
            d
            for d in site.devices
            if isinstance(d, ModbusDeviceConfig) and d.enabled and d.bus == bus.name and d.profile in profiles
        ]
        if not devices:
            continue
        cycle = estimate_bus_cycle_s(bus, (r for d in devices for r in device_requests(profiles[d.profile], d)))
        fastest = min(devices, key=lambda d: d.interval_s)
        if cycle > fastest.interval_s:
            issues.append(
                doc.issue(
                    ("buses", i),
                    f"bus {bus.name}: one polling cycle needs about {cycle:.2f} s at {bus.baudrate} baud, longer "
                    f"than the {_seconds(fastest.interval_s)} s interval of {fastest.name}; raise the baud rate, "
                    "lengthen interval_s, or split the bus",
                    severity="warning",
                )
            )
    return issues


def _seconds(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"
