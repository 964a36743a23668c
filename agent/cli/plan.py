"""``energy-agent plan SITE.yaml [--device NAME]``: show the Modbus read plan of each device, without any I/O.

For each device: every request (function code, table, protocol start address, count, unused registers read
through, the points it decodes), its requests per poll and the theoretical minimum. Exit 0, 78 on a bad config,
2 when ``--device`` names no Modbus device of the site.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.load import LoadedSite
from agent.config.refuse import refuse
from agent.config.site import ModbusDeviceConfig
from agent.errors import ConfigError
from agent.runtime.compile import compile_site
from agent.sources.modbus.plan import ReadPlan

NAME = "plan"
HELP = "print each Modbus device's read requests (and each DL/T 645 meter's) per poll and the theoretical minimum"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, help="the gateway's site file")
    parser.add_argument("--device", action="append", default=[], metavar="NAME", help="only this device (repeatable)")


def format_plan(plan: ReadPlan, header: str) -> list[str]:
    lines = [f"{header}: {len(plan.requests)} requests per poll (minimum {plan.minimum})"]
    for r in plan.requests:
        names = ", ".join(p.name for p in r.points)
        lines.append(
            f"  fc {r.function} {r.table:<8} start {r.start:<5} count {r.count:<4} gap {r.gap:<3} "
            f"{len(r.points)} points: {names}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        compiled = compile_site(args.site)
        devices = [d for d in compiled.loaded.site.devices if isinstance(d, ModbusDeviceConfig)]
        meters = [d for d in compiled.loaded.site.devices if isinstance(d, Dlt645DeviceConfig)]
        unknown = sorted(set(args.device) - {d.name for d in devices} - {d.name for d in meters})
        if unknown:
            print(f"energy-agent plan: no Modbus device named {', '.join(unknown)} in {args.site}", file=sys.stderr)
            return 2
        selected = [d for d in devices if not args.device or d.name in args.device]
        total = minimum = 0
        for device in selected:
            plan = compiled.modbus_plans[device.name]
            where = f"{device.host}:{device.port}" if device.host is not None else f"bus {device.bus}"
            header = f"{device.name} (profile {device.profile}, unit {device.unit_id}, {where})"
            if not device.enabled:
                header += " [disabled]"
            print("\n".join(format_plan(plan, header)))
            total += len(plan.requests)
            minimum += plan.minimum
        chosen = [d for d in meters if not args.device or d.name in args.device]
        for meter in chosen:
            lines = format_meter(compiled.loaded, meter)
            print("\n".join(lines))
            total += len(lines) - 1
            minimum += len(lines) - 1
    except ConfigError as exc:
        return refuse(exc)
    n = len(selected) + len(chosen)
    print(f"total: {total} requests per poll for {n} devices (theoretical minimum {minimum})")
    return 0


def format_meter(loaded: LoadedSite, meter: Dlt645DeviceConfig) -> list[str]:
    """A DL/T 645 meter's requests: one read per data identifier (DL/T 645 reads one identifier per frame)."""
    version = meter.effective_version(loaded.dlt645_profiles[meter.profile])
    by_di: dict[str, list[str]] = {}
    formats: dict[str, str] = {}
    for p in meter.points:
        by_di.setdefault(p.di, []).append(p.name)
        formats[p.di] = p.format.text
    code = "0x11" if version == "2007" else "0x01"
    header = (
        f"{meter.name} (DL/T 645-{version}, profile {meter.profile}, address {meter.address}, bus {meter.bus}"
        f"{', CT ' + format(meter.ct_ratio, 'g') if meter.ct_ratio != 1 else ''}"
        f"{', PT ' + format(meter.pt_ratio, 'g') if meter.pt_ratio != 1 else ''})"
        f"{' [disabled]' if not meter.enabled else ''}: {len(by_di)} requests per poll (one per data identifier)"
    )
    lines = [header]
    for di, names in by_di.items():
        lines.append(f"  {code} di {di:<11} format {formats[di]:<20} {len(names)} points: {', '.join(names)}")
    return lines
