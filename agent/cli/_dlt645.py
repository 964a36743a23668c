"""``probe`` for DL/T 645 meters: their lines and hints, the 1997/2007 check of a silent meter, and
``probe SITE --read-address BUS`` (0x13 to AA..AA on a point-to-point link, printed for the site file).

A meter that answers nothing to 2007 frames is asked once more with a 1997 read of 9010 to the same address (and a
1997 meter with a 2007 read of 00-01-00-00): if that answers, the hint says to set ``version`` and the matching
profile. Read-only like the agent: only read frames are sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.cli._hints import hints
from agent.config.dlt645 import Version, di_bytes
from agent.config.dtu import DtuBusConfig
from agent.config.load import LoadedSite
from agent.config.site import SerialBusConfig, TcpGatewayConfig
from agent.errors import SourceError
from agent.model import PollResult, Quality
from agent.sources.dlt645 import frame as fr
from agent.sources.dlt645.device import Dlt645Poller, read_address
from agent.sources.modbus.link import ModbusLink
from agent.wire import sample_dict

_NO_REPLY = (
    "no reply from the meter: check the address (the 12 digits on its nameplate; on a point-to-point link "
    "energy-agent probe SITE --read-address BUS reads it), the bus's baud rate (DL/T 645 meters: often 2400, also "
    "1200, 4800 or 9600) and parity (8E1 is their standard), and the RS-485 A/B wiring"
)


def meter_hints(errors: list[str], reasons: list[str]) -> list[str]:
    """DL/T 645 hints: a timeout means address, baud rate or parity (not a Modbus unit id)."""
    out = (
        [] if not any("timeout" in e for e in errors + reasons) or any("garbled" in e for e in errors) else [_NO_REPLY]
    )
    return out + [h for h in hints(errors + reasons) if "unit_id" not in h]


async def other_edition(link: ModbusLink, poller: Dlt645Poller) -> str | None:
    """The hint when the silent meter answers the other edition's read of forward active energy."""
    other: Version = "1997" if poller.version == "2007" else "2007"
    di = di_bytes("9010" if other == "1997" else "00-01-00-00", other)
    try:
        reply = fr.parse(await link.exchange(fr.read_request(poller.config.address, di), fr.cut, poller.timeout_s))
    except (SourceError, ValueError):
        return None
    if not reply.is_reply:
        return None
    profile = "dlt645-generic-1997-meter" if other == "1997" else "dlt645-generic-2007-3ph-meter"
    return (
        f"this meter answers DL/T 645-{other} frames, not {poller.version}: set version: '{other}' on the device "
        f"and a {other} profile (e.g. {profile})"
    )


def meter_lines(poller: Dlt645Poller, result: PollResult, extra: list[str]) -> list[str]:
    bad = sum(s.quality is Quality.BAD for s in result.samples)
    total = len(result.samples)
    if poller.consecutive_failures:
        state = "FAILED (no reply)"
    elif bad:
        state = "answered, but no point could be read" if bad == total else f"answered, {bad} of {total} points bad"
    else:
        state = "answered"
    n = result.requests
    lines = [
        f"{result.device} ({poller.endpoint}, DL/T 645-{poller.version} address {poller.config.address}): {state}, "
        f"{n} request{'s' if n != 1 else ''} in {result.duration_s * 1000:.1f} ms"
    ]
    errors = list(dict.fromkeys(result.errors))
    reasons = [s.reason for s in result.samples if s.reason and s.quality is not Quality.GOOD]
    lines += [f"  error: {e}" for e in errors]
    lines += [f"  hint: {h}" for h in [*extra, *meter_hints(errors, reasons)]]
    for s in result.samples:
        value = "-" if s.value is None else f"{s.value}"
        said = bool(s.reason) and any(s.reason in e for e in errors)
        reason = f"  ({s.reason})" if s.reason and not said else ""
        lines.append(f"  {s.point:<28} {value:>18} {s.unit:<6} {s.quality.value:<9}{reason}".rstrip())
    return lines


def meter_json(result: PollResult) -> list[str]:
    return [json.dumps({"device": s.device, **sample_dict(s)}, ensure_ascii=False) for s in result.samples]


def bus_link(loaded: LoadedSite, bus_name: str) -> ModbusLink | str:
    """A link on the named bus for --read-address, or why there is none."""
    bus = next((b for b in loaded.site.buses if b.name == bus_name), None)
    if bus is None:
        return f"no bus named {bus_name} under buses"
    if isinstance(bus, SerialBusConfig):
        return ModbusLink.serial(bus.port, bus.baudrate, bus.parity, bus.stopbits, bus.bytesize)
    if isinstance(bus, TcpGatewayConfig):
        return ModbusLink.tcp(bus.host, bus.port, "rtu")
    assert isinstance(bus, DtuBusConfig)
    return f"bus {bus_name} is a dial-in DTU: read the address with the meter on a local RS-485 adapter"


async def read_address_lines(link: ModbusLink, timeout_s: float = 2.0) -> tuple[list[str], int]:
    """Ask the one meter on the link for its address; the lines to print and the exit status."""
    try:
        address = await read_address(link, timeout_s)
    except (SourceError, ValueError) as exc:
        return [
            f"read address: no answer ({exc})",
            "  hint: only one meter may be on the line (AA..AA is a broadcast; several meters would answer at once)"
            "; 1997 meters do not know this command: read the address from the nameplate; check baud rate and "
            "parity (8E1)",
        ], 1
    finally:
        await link.close()
    return [
        f"read address: the meter on this line answers as {address}",
        "  put it on the device in the site file:",
        f"    address: '{address}'",
    ], 0


def run_read_address(loaded: LoadedSite, bus_name: str, as_json: bool) -> int:
    link = bus_link(loaded, bus_name)
    if isinstance(link, str):
        print(f"energy-agent probe: {link}")
        return 2
    lines, code = asyncio.run(read_address_lines(link))
    if as_json:
        found: dict[str, Any] = {"bus": bus_name, "address": None}
        if code == 0:
            found["address"] = lines[-1].split("'")[1]
        print(json.dumps(found))
    else:
        print("\n".join(lines))
    return code


def catalogue_markdown() -> str:
    """``energy-agent reference dlt645``: the profile keys and every data identifier the agent knows."""
    from agent.cli.reference import markdown_of
    from agent.config.dlt645 import Dlt645ProfileConfig, catalogue

    out = [markdown_of(Dlt645ProfileConfig, "DL/T 645 profile", "dlt645").rstrip(), ""]
    for version in ("2007", "1997"):
        out += [
            f"## DL/T 645-{version} data identifiers (agent/data/dlt645_{version}.yaml)",
            "",
            "| di | name | format | unit | signed | ratio | role | what |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for di, item in catalogue(version).items():
            role = item.role.value if item.role else ""
            signed = "yes" if item.signed else ""
            out.append(
                f"| `{di}` | {item.name} | `{item.format}` | {item.unit} | {signed} | {item.ratio} | {role} | "
                f"{item.description} |"
            )
        out.append("")
    return "\n".join(out)
