"""``energy-agent probe SITE.yaml --scan-units NAME``: which Modbus unit ids answer on a bus, gateway or TCP device.

One read-only request per unit id (function 3, read one holding register at address 0; the agent cannot build a
write request). A data reply or any exception reply means a device is there (ILLEGAL DATA ADDRESS too: it answered
for its unit id); a timeout, or GATEWAY PATH UNAVAILABLE / GATEWAY TARGET DEVICE FAILED TO RESPOND from a gateway,
means none. Prints each unit that answers with the device the site gives that unit id, then the site's devices on
that link that did not answer (a wrong ``unit_id``, wiring or baud rate). Exit 0 when every configured device
answered, 1 when one did not, 2 for an unknown name or a bad unit range.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent.config.load import LoadedSite
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, TcpGatewayConfig
from agent.errors import DeviceException, SourceError
from agent.sources.modbus.link import ModbusLink

_NOBODY = frozenset({0x0A, 0x0B})  # a gateway's "no device answered behind me"


def parse_units(text: str) -> list[int]:
    """``1-247`` or ``1,2,5-9`` -> unit ids (0..255). Raises ValueError."""
    units: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        first, last = int(lo), int(hi or lo)
        if not 0 <= first <= last <= 255:
            raise ValueError(f"{part.strip()!r} is not a unit range inside 0..255")
        units.update(range(first, last + 1))
    return sorted(units)


def _target(loaded: LoadedSite, name: str) -> tuple[str, ModbusLink, list[ModbusDeviceConfig]] | None:
    """(endpoint text, a link to it, the site's devices on it) for a bus, gateway or Modbus TCP device name."""
    devices = [d for d in loaded.site.devices if isinstance(d, ModbusDeviceConfig)]
    for bus in loaded.site.buses:
        if bus.name == name:
            on_it = [d for d in devices if d.bus == name]
            if isinstance(bus, SerialBusConfig):
                link = ModbusLink.serial(bus.port, bus.baudrate, bus.parity, bus.stopbits, bus.bytesize)
                return f"{bus.port} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}", link, on_it
            assert isinstance(bus, TcpGatewayConfig)
            return f"{bus.host}:{bus.port}", ModbusLink.tcp(bus.host, bus.port, bus.framing), on_it
    for d in devices:
        if d.name == name and d.host is not None:
            same = [x for x in devices if x.host == d.host and x.port == d.port]
            return f"{d.host}:{d.port}", ModbusLink.tcp(d.host, d.port), same
    return None


async def _scan(link: ModbusLink, units: list[int], timeout_s: float) -> dict[int, str]:
    """unit -> what its reply was, for the units that answered."""
    found: dict[int, str] = {}
    try:
        for unit in units:
            try:
                await link.read(unit, 3, 0, 1, timeout_s)
                found[unit] = "answers"
            except DeviceException as exc:
                if exc.code not in _NOBODY:
                    found[unit] = f"answers ({exc.code_name} for holding register 0)"
            except SourceError:
                continue  # timeout, lost connection, garbled reply: nobody (reliably) there
    finally:
        await link.close()
    return found


def scan_units(loaded: LoadedSite, args: argparse.Namespace) -> int:
    try:
        units = parse_units(args.units)
    except ValueError as exc:
        print(f"energy-agent probe: --units: {exc}", file=sys.stderr)
        return 2
    target = _target(loaded, args.scan_units)
    if target is None:
        buses = [b.name for b in loaded.site.buses]
        tcp = [d.name for d in loaded.site.devices if isinstance(d, ModbusDeviceConfig) and d.host is not None]
        print(
            f"energy-agent probe: --scan-units {args.scan_units}: no bus, gateway or Modbus TCP device of that name "
            f"(buses: {', '.join(buses) or 'none'}; TCP devices: {', '.join(tcp) or 'none'})",
            file=sys.stderr,
        )
        return 2
    endpoint, link, configured = target
    timeout_s = args.timeout_ms / 1000
    print(
        f"scanning unit ids {units[0]}..{units[-1]} on {args.scan_units} ({endpoint}): one read of holding "
        f"register 0 each (read-only), {args.timeout_ms} ms timeout",
        flush=True,
    )
    found = asyncio.run(_scan(link, units, timeout_s))
    by_unit = {d.unit_id: d.name for d in configured}
    for unit, what in found.items():
        here = f": {by_unit[unit]} in the site file" if unit in by_unit else ": not in the site file"
        print(f"  unit {unit:>3} {what}{here}")
    silent = [d for d in configured if d.unit_id not in found and d.unit_id in units]
    print(f"{len(found)} of {len(units)} unit ids answer: {', '.join(map(str, found)) or 'none'}")
    for d in silent:
        print(f"  {d.name} (unit_id {d.unit_id}) did not answer: check its unit_id, wiring and the bus settings")
    return 1 if silent else 0
