"""Site checks for DL/T 645 meters and dial-in DTUs (called by ``agent.config.checks.check_site``).

- a meter's ``bus`` is declared, and is a serial bus, a serial device server (``tcp_gateway`` with ``framing: rtu``:
  raw bytes over TCP) or a DTU; a Modbus TCP gateway cannot carry DL/T 645 frames;
- two meters on one bus have different addresses;
- DTU buses need ``dtu_listener``; two DTUs with one registration packet cannot be told apart;
- a Modbus device behind a DTU is addressed like on RS-485 (units 1..247), checked with the other serial lines.
"""

from __future__ import annotations

from agent.config.diagnostics import did_you_mean
from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.dtu import DtuBusConfig
from agent.config.site import SiteConfig, TcpGatewayConfig
from agent.config.yaml_source import YamlDocument
from agent.errors import ConfigIssue


def check_dlt645_site(site: SiteConfig, doc: YamlDocument) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    buses = {b.name: b for b in site.buses}
    seen: dict[tuple[str, str], str] = {}
    for i, device in enumerate(site.devices):
        if not isinstance(device, Dlt645DeviceConfig):
            continue
        bus = buses.get(device.bus)
        if bus is None:
            hint = did_you_mean(device.bus, list(buses)) or (
                f"; declared buses: {', '.join(buses)}" if buses else "; declare it under buses first"
            )
            issues.append(doc.issue(("devices", i, "bus"), f"bus '{device.bus}' is not declared under buses{hint}"))
            continue
        if isinstance(bus, TcpGatewayConfig) and bus.framing != "rtu":
            issues.append(
                doc.issue(
                    ("devices", i, "bus"),
                    f"bus '{bus.name}' is a Modbus TCP gateway (framing: tcp), which cannot carry DL/T 645 frames; "
                    "for a serial device server set framing: rtu on it (raw serial bytes over TCP)",
                )
            )
        key = (device.bus, device.address)
        if key in seen:
            issues.append(
                doc.issue(
                    ("devices", i, "address"),
                    f"address {device.address} on bus {device.bus} is already used by '{seen[key]}'; each meter on "
                    "one line needs its own address (the 12 digits on its nameplate)",
                )
            )
        else:
            seen[key] = device.name
        if device.timeout_ms >= device.interval_s * 1000:
            issues.append(
                doc.issue(
                    ("devices", i, "timeout_ms"),
                    f"timeout_ms {device.timeout_ms:g} is not shorter than the {device.interval_s:g} s interval; "
                    "lower timeout_ms or raise interval_s",
                    severity="warning",
                )
            )
    registrations: dict[bytes, str] = {}
    for i, bus in enumerate(site.buses):
        if not isinstance(bus, DtuBusConfig):
            continue
        if site.dtu_listener is None:
            issues.append(
                doc.issue(
                    ("buses", i, "transport"),
                    f"bus '{bus.name}' is a dial-in DTU: add a dtu_listener section with the port the DTUs connect to",
                )
            )
        reg = bus.registration_bytes
        other = next((name for r, name in registrations.items() if r.startswith(reg) or reg.startswith(r)), None)
        if other is not None:
            issues.append(
                doc.issue(
                    ("buses", i, "registration" if bus.registration is not None else "registration_hex"),
                    f"DTU '{bus.name}' and DTU '{other}' have registration packets that cannot be told apart "
                    "(one starts with the other); give each DTU its own ID",
                )
            )
        registrations[reg] = bus.name
    return issues
