"""``energy-agent validate SITE.yaml`` / ``energy-agent validate --profile FILE...``: check config before deploying.

Loads the site and every profile it uses (or the given profiles alone), builds each Modbus device's read plan when
the Modbus source is installed, and prints every problem compiler-style (``file:line:col: path: message``) on
stderr, errors and warnings together, sorted. Exit 0 when the config is valid (warnings allowed), 78 (EX_CONFIG)
when it is not. On success a one-line summary per device goes to stdout; ``--quiet`` prints errors only.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from agent.config.load import LoadedSite, load_profile_checked, load_site
from agent.config.site import ModbusDeviceConfig, SerialBusConfig, TcpGatewayConfig
from agent.errors import EX_CONFIG, ConfigError, ConfigIssue

NAME = "validate"
HELP = "check a site file and its device profiles (or profiles alone) and exit 0, or 78 on a bad config"
EX_OK = 0

_PLAN_MODULE = "agent.sources.modbus.plan"
_POINT_PATH = re.compile(r"^points\[(\d+)\](?:\.(\w+))?$")


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
            profile, warnings = load_profile_checked(path)
        except ConfigError as e:
            issues += e.issues
            continue
        issues += warnings
        summary.append(f"{path}: profile {profile.profile}, {len(profile.points)} points")
    if args.site is not None:
        try:
            loaded = load_site(args.site)
        except ConfigError as e:
            issues += e.issues
        else:
            issues += loaded.warnings
            plan_issues, requests = _plans(loaded)
            issues += plan_issues
            summary += [_describe(loaded, d, requests.get(d.name)) for d in loaded.site.devices]
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


def _plans(loaded: LoadedSite) -> tuple[list[ConfigIssue], dict[str, int]]:
    """Build every Modbus device's read plan, if the Modbus source is installed: its errors, request counts."""
    if importlib.util.find_spec(_PLAN_MODULE) is None:
        return [], {}
    build: Any = getattr(importlib.import_module(_PLAN_MODULE), "build_read_plan", None)
    if build is None:
        return [], {}
    issues: list[ConfigIssue] = []
    counts: dict[str, int] = {}
    for device in loaded.site.devices:
        if not isinstance(device, ModbusDeviceConfig) or device.profile not in loaded.profiles:
            continue
        try:
            plan = build(loaded.profiles[device.profile], device)
        except ConfigError as e:
            issues += [_reposition(loaded, device.profile, i) for i in e.issues]
            continue
        counts[device.name] = len(plan.requests)
    return list(dict.fromkeys(issues)), counts


def _reposition(loaded: LoadedSite, profile: str, issue: ConfigIssue) -> ConfigIssue:
    """Give a plan issue without a position (line 0) the position of the point it names in the profile file."""
    match = _POINT_PATH.match(issue.path)
    if issue.line > 0 or match is None:
        return issue
    path: tuple[str | int, ...] = ("points", int(match.group(1)))
    if match.group(2):
        path = (*path, match.group(2))
    return loaded.profile_issue(profile, path, issue.message, issue.severity)


def _describe(loaded: LoadedSite, device: object, requests: int | None) -> str:
    if not isinstance(device, ModbusDeviceConfig):  # OPC UA: read only what every version of its model has
        name, endpoint = getattr(device, "name", "?"), getattr(device, "endpoint", "")
        mode, points = getattr(device, "mode", ""), len(getattr(device, "points", ()))
        interval = getattr(device, "interval_s", None)
        every = f", every {interval:g} s" if isinstance(interval, int | float) else ""
        state = "" if getattr(device, "enabled", True) else " (disabled)"
        return f"{name}: opcua {endpoint}{f' ({mode})' if mode else ''}, {points} points{every}{state}"
    bus = next((b for b in loaded.site.buses if b.name == device.bus), None)
    if isinstance(bus, SerialBusConfig):
        transport = f"rtu {bus.name} {bus.port} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"
    elif isinstance(bus, TcpGatewayConfig):
        transport = f"gateway {bus.name} {bus.host}:{bus.port} ({bus.framing} framing)"
    else:
        transport = f"tcp {device.host}:{device.port}"
    points = len(loaded.profiles[device.profile].points)
    plan = f", {requests} request{'s' if requests != 1 else ''}" if requests is not None else ""
    state = "" if device.enabled else " (disabled)"
    return (
        f"{device.name}: profile {device.profile}, {transport} unit {device.unit_id}, "
        f"{points} points{plan}, every {device.interval_s:g} s{state}"
    )
