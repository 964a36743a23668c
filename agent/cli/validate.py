"""``energy-agent validate SITE.yaml`` / ``energy-agent validate --profile FILE...``: check config before deploying.

Compiles the site as ``run`` does (``agent.runtime.compile``: the site and every profile it uses, each Modbus
device's read plan, each OPC UA device's plan, serial bus timing, the KPI section), or checks the given profiles
alone, and prints every problem compiler-style (``file:line:col: path: message``) on stderr, errors and warnings
together, sorted. A site that validates starts. Exit 0 when the config is valid (warnings allowed), 78 (EX_CONFIG)
when it is not. On success a one-line summary per device goes to stdout; ``--quiet`` prints errors only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli._resolve import unresolved_hosts
from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.dtu import DtuBusConfig
from agent.config.load import LoadedSite, load_any_profile_checked
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, TcpGatewayConfig
from agent.errors import EX_CONFIG, ConfigError, ConfigIssue
from agent.runtime.compile import compile_site

NAME = "validate"
HELP = "check a site file and its device profiles (or profiles alone) and exit 0, or 78 on a bad config"
EX_OK = 0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, nargs="?", help="the gateway's site file")
    parser.add_argument(
        "--profile", type=Path, nargs="+", metavar="FILE", default=[], help="validate these device profiles alone"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print errors only, no warnings or summary")


def run(args: argparse.Namespace) -> int:
    if args.site is None and not args.profile:
        print("energy-agent validate: give a site file or --profile FILE...", file=sys.stderr)
        return 2
    issues: list[ConfigIssue] = []
    summary: list[str] = []
    for path in args.profile:
        try:
            profile, warnings = load_any_profile_checked(path)
        except ConfigError as e:
            issues += e.issues
            continue
        issues += warnings
        summary.append(f"{path}: profile {profile.profile}, {len(profile.points)} points")
    if args.site is not None:
        try:
            compiled = compile_site(args.site)
        except ConfigError as e:
            issues += e.issues
        else:
            issues += compiled.warnings
            issues += unresolved_hosts(compiled.loaded)
            requests = {name: len(plan.requests) for name, plan in compiled.modbus_plans.items()}
            summary += [_describe(compiled.loaded, d, requests.get(d.name)) for d in compiled.loaded.site.devices]
    return _report(issues, summary, quiet=args.quiet)


def _report(issues: list[ConfigIssue], summary: list[str], *, quiet: bool) -> int:
    ordered = ConfigError(issues).issues  # sorted the same way everywhere
    failed = any(i.severity == "error" for i in ordered)
    for issue in ordered:
        if issue.severity == "error" or not quiet:
            print(issue, file=sys.stderr)
    if failed:
        errors = sum(i.severity == "error" for i in ordered)
        print(f"config not valid: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        return EX_CONFIG
    if not quiet:
        for line in summary:
            print(line)
    return EX_OK


def _bus_text(bus: object) -> str:
    if isinstance(bus, SerialBusConfig):
        return f"rtu {bus.name} {bus.port} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"
    if isinstance(bus, TcpGatewayConfig):
        return f"gateway {bus.name} {bus.host}:{bus.port} ({bus.framing} framing)"
    if isinstance(bus, DtuBusConfig):
        return f"dial-in DTU {bus.name}"
    return "?"


def _describe(loaded: LoadedSite, device: object, requests: int | None) -> str:
    if isinstance(device, Dlt645DeviceConfig):
        bus = next((b for b in loaded.site.buses if b.name == device.bus), None)
        profile = loaded.dlt645_profiles[device.profile]
        dis = len({p.di for p in device.points})
        ratios = (
            f", CT {device.ct_ratio:g} PT {device.pt_ratio:g}" if (device.ct_ratio, device.pt_ratio) != (1, 1) else ""
        )
        state = "" if device.enabled else " (disabled)"
        return (
            f"{device.name}: dlt645-{device.effective_version(profile)} profile {device.profile}, {_bus_text(bus)} "
            f"address {device.address}, {len(device.points)} points, {dis} requests{ratios}, "
            f"every {device.interval_s:g} s{state}"
        )
    if not isinstance(device, ModbusDeviceConfig):  # OPC UA: read only what every version of its model has
        name, endpoint = getattr(device, "name", "?"), getattr(device, "endpoint", "")
        mode, points = getattr(device, "mode", ""), len(getattr(device, "points", ()))
        interval = getattr(device, "interval_s", None)
        every = f", every {interval:g} s" if isinstance(interval, int | float) else ""
        state = "" if getattr(device, "enabled", True) else " (disabled)"
        return f"{name}: opcua {endpoint}{f' ({mode})' if mode else ''}, {points} points{every}{state}"
    bus = next((b for b in loaded.site.buses if b.name == device.bus), None)
    transport = _bus_text(bus) if bus is not None else f"tcp {device.host}:{device.port}"
    points = len(loaded.profiles[device.profile].points)
    plan = f", {requests} request{'s' if requests != 1 else ''}" if requests is not None else ""
    state = "" if device.enabled else " (disabled)"
    return (
        f"{device.name}: profile {device.profile}, {transport} unit {device.unit_id}, "
        f"{points} points{plan}, every {device.interval_s:g} s{state}"
    )
