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

DL/T 645 meters on the same bus (``dlt645_requests``): one request per data identifier, each frame
``FE x preamble + 12 + L`` characters (L = identifier + value bytes in the reply; the reply counted with as many FE
as the request, the most meters send), no silence (frames carry their length), and ``DLT645_TURNAROUND_S``: the
standard lets a meter take 20 to 500 ms to answer; 20 ms is the figure used, a slower meter shows as a longer
measured cycle.

The requests of each device come from its Modbus read plan, built by the compile step
(``agent.runtime.compile``), which calls ``check_bus_times`` once every plan is built: config sits below the
sources, so it is handed the requests rather than importing the planner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, SiteConfig
from agent.config.yaml_source import PathKey
from agent.errors import ConfigIssue

TURNAROUND_S = 0.010
DLT645_TURNAROUND_S = 0.020
REQUEST_CHARS = 8


@dataclass(frozen=True, slots=True)
class RequestSize:
    """One read request: how many registers (or bits, when ``bits``) it asks for; or, for another protocol's
    frame (DL/T 645), its request and reply length in characters (``chars``)."""

    count: int
    bits: bool = False
    chars: tuple[int, int] | None = None


def dlt645_requests(device: Dlt645DeviceConfig, version: str) -> list[RequestSize]:
    """One request per data identifier of a bound DL/T 645 device (points sharing an identifier share it)."""
    di_len = 4 if version == "2007" else 2
    sizes: dict[str, int] = {}
    for p in device.points:
        sizes[p.di] = p.format.size
    pre = device.preamble
    return [RequestSize(0, chars=(pre + 12 + di_len, pre + 12 + di_len + size)) for size in sizes.values()]


def character_bits(bus: SerialBusConfig) -> int:
    return 1 + bus.bytesize + (0 if bus.parity == "N" else 1) + bus.stopbits


def request_time_s(bus: SerialBusConfig, request: RequestSize) -> float:
    """Wire time of one request and its response, with silences, pause and device turnaround."""
    char_s = character_bits(bus) / bus.baudrate
    if request.chars is not None:
        return sum(request.chars) * char_s + bus.pause_ms / 1000 + DLT645_TURNAROUND_S
    response = 5 + (math.ceil(request.count / 8) if request.bits else 2 * request.count)
    silence_s = 3.5 * char_s if bus.baudrate <= 19200 else 0.00175
    return (REQUEST_CHARS + response) * char_s + 2 * silence_s + bus.pause_ms / 1000 + TURNAROUND_S


def estimate_bus_cycle_s(bus: SerialBusConfig, requests: Iterable[RequestSize]) -> float:
    """Seconds one cycle of ``requests`` takes on ``bus``."""
    return sum(request_time_s(bus, r) for r in requests)


class _Positions(Protocol):
    def issue(self, path: PathKey, message: str, *, severity: str = "error") -> ConfigIssue: ...


def check_bus_times(
    site: SiteConfig, requests: Mapping[str, Sequence[RequestSize]], doc: _Positions
) -> list[ConfigIssue]:
    """A warning at each serial bus whose estimated cycle is longer than the shortest interval polled on it.
    ``requests`` holds one poll's requests per device name (from its read plan); ``doc`` positions the warning
    (a ``YamlDocument`` of the site file, or the ``LoadedSite``)."""
    issues: list[ConfigIssue] = []
    for i, bus in enumerate(site.buses):
        if not isinstance(bus, SerialBusConfig):
            continue
        devices = [
            d
            for d in site.devices
            if isinstance(d, ModbusDeviceConfig | Dlt645DeviceConfig)
            and d.enabled
            and d.bus == bus.name
            and d.name in requests
        ]
        if not devices:
            continue
        cycle = estimate_bus_cycle_s(bus, (r for d in devices for r in requests[d.name]))
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
