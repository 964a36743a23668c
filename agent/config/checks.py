"""Semantic checks pydantic cannot make on one field at a time, each reported at a position in the file.

``check_profile`` looks inside one profile: duplicate point names, addresses that do not exist once
``address_base`` is applied, points past the end of the 16-bit address space, points that overlap in one table
(sharing a register is allowed only for bit points with different bits, and for an 8-bit high and low half), and
addresses that look like Modicon 5-digit notation (a warning).

``check_site`` looks across the site file: duplicate device and bus names, a ``bus`` naming an undeclared bus,
two devices answering to one unit id on one bus, gateway or host:port, unit ids a serial bus cannot address, and
a timeout not shorter than the polling interval (a warning; the default timeout never draws it).
"""

from __future__ import annotations

from agent.config.diagnostics import did_you_mean
from agent.config.dlt645_site import check_dlt645_site
from agent.config.profile import DataType, PointConfig, ProfileConfig, RegisterKind
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, SiteConfig, TcpGatewayConfig
from agent.config.yaml_source import YamlDocument
from agent.errors import ConfigIssue

LAST_ADDRESS = 65535
_HIGH = (DataType.INT8_HIGH, DataType.UINT8_HIGH)
_LOW = (DataType.INT8_LOW, DataType.UINT8_LOW)
# Modicon notation: the first digit names the table, the rest is a 1-based address.
_MODICON = {
    RegisterKind.DISCRETE_INPUT: 10001,
    RegisterKind.INPUT_REGISTER: 30001,
    RegisterKind.HOLDING_REGISTER: 40001,
}


def point_width(point: PointConfig) -> int:
    """Registers (or bits, in coil and discrete-input tables) one point occupies."""
    return point.type.registers(point.length)


def check_profile(profile: ProfileConfig, doc: YamlDocument) -> list[ConfigIssue]:
    """Linear in the number of points; positions are looked up only for points with a problem."""
    issues: list[ConfigIssue] = []
    first: dict[str, int] = {}
    for i, point in enumerate(profile.points):
        j = first.setdefault(point.name, i)
        if j != i:
            issues.append(
                doc.issue(
                    ("points", i, "name"),
                    f"point name '{point.name}' is already used on line {doc.value_position(('points', j, 'name'))[0]}; "
                    "give each point its own name",
                )
            )
        issues += _check_address(profile, i, point, doc)
    issues += _check_overlaps(profile, doc)
    return issues


def _check_address(profile: ProfileConfig, i: int, point: PointConfig, doc: YamlDocument) -> list[ConfigIssue]:
    where = ("points", i, "address")
    if profile.address_base == 1 and point.address == 0:
        return [
            doc.issue(
                where,
                "address 0 does not exist when address_base is 1 (the manual counts from 1); "
                "check the manual, or set address_base: 0 if it counts from 0",
            )
        ]
    start = point.address - profile.address_base
    end = start + point_width(point) - 1
    if end > LAST_ADDRESS:
        what = f"{point.type.value} of {point_width(point)} registers" if point.type is DataType.STRING else ""
        what = what or point.type.value
        return [
            doc.issue(
                where,
                f"{what} at address {point.address} ends at protocol address {end}, past the last Modbus "
                f"address {LAST_ADDRESS}; check the address and address_base {profile.address_base}",
            )
        ]
    base = _MODICON.get(point.kind)
    if base is not None and base <= point.address < base + 9999 and profile.address_base == 1:
        return [
            doc.issue(
                where,
                f"address {point.address} looks like Modicon notation for {point.kind.value} "
                f"{point.address - base + 1}; if the manual means that, write address {point.address - base + 1}",
                severity="warning",
            )
        ]
    return []


def _check_overlaps(profile: ProfileConfig, doc: YamlDocument) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    # register (or bit) -> the point using it, or the points sharing it (bits of one register, high/low bytes)
    owners: dict[tuple[RegisterKind, int], int | list[int]] = {}
    for i, point in enumerate(profile.points):
        if point.address - profile.address_base < 0:
            continue  # reported by _check_address
        clash: int | None = None
        for offset in range(point_width(point)):
            cell = (point.kind, point.address + offset)
            held = owners.get(cell)
            if held is None:
                owners[cell] = i
                continue
            for j in [held] if isinstance(held, int) else held:
                if clash is None and not _may_share(profile.points[j], point):
                    clash = j
            owners[cell] = [held, i] if isinstance(held, int) else [*held, i]
        if clash is not None:
            other = profile.points[clash]
            line = doc.value_position(("points", clash, "name"))[0]
            issues.append(
                doc.issue(
                    ("points", i, "address"),
                    f"'{point.name}' overlaps '{other.name}' (line {line}) in the {point.kind.value} table; points "
                    "may share a register only as bits of it or as its high and low bytes",
                )
            )
    return issues


def _may_share(a: PointConfig, b: PointConfig) -> bool:
    if a.address != b.address:
        return False
    if a.type is DataType.BIT and b.type is DataType.BIT:
        return a.bit != b.bit
    return (a.type in _HIGH and b.type in _LOW) or (a.type in _LOW and b.type in _HIGH)


def check_site(site: SiteConfig, doc: YamlDocument) -> list[ConfigIssue]:
    issues = _unique_names(site, doc) + check_dlt645_site(site, doc)
    buses = {bus.name: bus for bus in site.buses}
    line_of_unit: dict[tuple[str, ...], tuple[int, str]] = {}
    for i, device in enumerate(site.devices):
        if not isinstance(device, ModbusDeviceConfig):
            continue
        if device.bus is not None and device.bus not in buses:
            hint = did_you_mean(device.bus, list(buses))
            if not hint:
                hint = f"; declared buses: {', '.join(buses)}" if buses else "; declare it there first"
            issues.append(doc.issue(("devices", i, "bus"), f"bus '{device.bus}' is not declared under buses{hint}"))
            continue
        bus = buses.get(device.bus) if device.bus is not None else None
        if device.bus is not None:
            channel: tuple[str, ...] = ("bus", device.bus)
            label = f"bus {device.bus}"
        else:
            channel = ("host", str(device.host).lower(), str(device.port))
            label = f"{device.host}:{device.port}"
        key = (*channel, str(device.unit_id))
        if key in line_of_unit:
            line, other = line_of_unit[key]
            issues.append(
                doc.issue(
                    ("devices", i, "unit_id"),
                    f"unit id {device.unit_id} on {label} is already used by '{other}' (line {line}); "
                    "each device on one line needs its own unit id",
                )
            )
        else:
            line_of_unit[key] = (doc.value_position(("devices", i, "name"))[0], device.name)
        serial = (
            isinstance(bus, SerialBusConfig)
            or (isinstance(bus, TcpGatewayConfig) and bus.framing == "rtu")
            or getattr(bus, "transport", "") == "dtu"
        )
        if serial and not 1 <= device.unit_id <= 247:
            issues.append(
                doc.issue(
                    ("devices", i, "unit_id"),
                    f"unit id {device.unit_id} cannot be polled on a serial line, which addresses units 1 to 247",
                )
            )
        if device.timeout_ms >= device.interval_s * 1000:  # never by default: unset, it is at most half the interval
            issues.append(
                doc.issue(
                    ("devices", i, "timeout_ms"),
                    f"timeout_ms {device.timeout_ms:g} is not shorter than the {device.interval_s:g} s interval, so "
                    "one silent reply delays the next poll; lower timeout_ms or raise interval_s",
                    severity="warning",
                )
            )
    return issues


def _unique_names(site: SiteConfig, doc: YamlDocument) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for section, entries in (("devices", site.devices), ("buses", site.buses)):
        first_line: dict[str, int] = {}
        for i, entry in enumerate(entries):
            where = (section, i, "name")
            if entry.name in first_line:
                noun = "device" if section == "devices" else "bus"
                issues.append(
                    doc.issue(
                        where,
                        f"{noun} name '{entry.name}' is already used on line {first_line[entry.name]}; "
                        f"give each {noun} its own name",
                    )
                )
            else:
                first_line[entry.name] = doc.value_position(where)[0]
    return issues
