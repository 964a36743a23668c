"""One compile step for every command that takes a site: load and check it, then build what the runtime will run.

``compile_site(path) -> CompiledSite`` (raises ``ConfigError`` with every issue, positioned, exit 78):

1. ``agent.config.load.load_site``: YAML, models, the site's and profiles' own checks, section hooks;
2. every Modbus device's read plan (``agent.sources.modbus.plan``), enabled or not, errors positioned at the
   profile's point;
3. every DL/T 645 meter got its profile's points when loading (``agent.config.load``): its requests are one per
   data identifier and join the bus cycle estimate below;
4. every OPC UA device's plan (``agent.sources.opcua.plan``; asyncua is imported only when the site has one);
5. what needs the plans or other packages: the serial bus cycle estimate (``agent.config.bus_time``, from the
   plans' real requests) and the KPI section against devices, profiles, level and factor tables
   (``agent.kpi.check``). A site the loader refuses still gets its KPI references checked, on the part of it that
   validates (``agent.config.salvage``), so one run reports every KPI mistake with the other errors.

``validate``, ``plan``, ``probe``, ``run`` and a reload all go through here, so a site ``validate`` accepts can be
started, and one it refuses is refused by ``run`` before any socket opens and before READY (a reload keeps the
running config). The runtime builds its sources from the plans compiled here, never re-planning. No I/O beyond
reading the files; nothing is connected.

This lives in ``runtime`` because it reaches into ``sources`` and ``kpi``, which sit above ``config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config.bus_time import RequestSize, check_bus_times, dlt645_requests
from agent.config.checks import point_width
from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.load import LoadedSite, load_site
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.salvage import salvage_site
from agent.config.site import ModbusDeviceConfig
from agent.errors import ConfigError, ConfigIssue
from agent.kpi.check import check_section
from agent.kpi.history import HistoryError, history_refs, parse_history
from agent.sources.modbus.plan import ReadPlan, build_read_plan

if TYPE_CHECKING:
    from agent.sources.opcua.plan import DevicePlan

_POINT_PATH = re.compile(r"^points\[(\d+)\](?:\.(\w+))?$")


@dataclass(frozen=True, slots=True)
class CompiledSite:
    """A site that loaded, checked and compiled: what ``run`` starts from."""

    loaded: LoadedSite
    modbus_plans: Mapping[str, ReadPlan]  # every Modbus device, by name
    opcua_plans: Mapping[str, DevicePlan]  # every OPC UA device, by name
    warnings: tuple[ConfigIssue, ...]  # the loader's and the compile step's, sorted


def compile_site(path: Path) -> CompiledSite:
    """Load, check and compile ``path`` (see the module docstring); ConfigError with every issue at once."""
    try:
        loaded = load_site(path)
    except ConfigError as e:  # still check the kpi section's references, so one run shows every mistake
        raise ConfigError([*e.issues, *_kpi_issues_of_refused(path, e.issues)]) from e
    issues: list[ConfigIssue] = []
    modbus = _modbus_plans(loaded, issues)
    opcua = _opcua_plans(loaded, issues)
    if not issues:
        requests = {name: [RequestSize(r.count, r.is_bits) for r in plan.requests] for name, plan in modbus.items()}
        for device in loaded.site.devices:
            if isinstance(device, Dlt645DeviceConfig) and device.profile in loaded.dlt645_profiles:
                version = device.effective_version(loaded.dlt645_profiles[device.profile])
                requests[device.name] = dlt645_requests(device, version)
        issues += check_bus_times(loaded.site, requests, loaded)
    if loaded.site.kpi is not None:
        issues += [
            loaded.issue(tuple(at), message)
            for at, message in check_section(loaded.site, loaded.site.kpi, loaded.profiles)
        ]
        issues += _history_issues(loaded)
    every = [*loaded.warnings, *issues]
    if any(i.severity == "error" for i in issues):
        raise ConfigError(every)
    return CompiledSite(loaded, modbus, opcua, tuple(ConfigError(every).issues))


def _history_issues(loaded: LoadedSite) -> list[ConfigIssue]:
    """Each line's history_csv must exist, parse and name only the line's inputs (agent.kpi.history)."""
    assert loaded.site.kpi is not None
    issues: list[ConfigIssue] = []
    for i, line in enumerate(loaded.site.kpi.lines):
        if line.history_csv is None:
            continue
        path = loaded.path.parent / line.history_csv
        try:
            rows = parse_history(path.read_text("utf-8"), line.history_csv)
            history_refs(line, sorted({c for r in rows for c in r.values}), line.history_csv)
        except OSError as exc:
            issues.append(loaded.issue(("kpi", "lines", i, "history_csv"), f"cannot read {path}: {exc.strerror}"))
        except HistoryError as exc:
            issues.append(loaded.issue(("kpi", "lines", i, "history_csv"), str(exc)))
    return issues


def _kpi_issues_of_refused(path: Path, found: list[ConfigIssue]) -> list[ConfigIssue]:
    """The kpi section's cross-checks on what validates of a refused site (``agent.config.salvage``), less those a
    part that did not validate would explain and those already found."""
    salvaged = salvage_site(path)
    if salvaged is None or salvaged.site.kpi is None:
        return []
    issues: list[ConfigIssue] = []
    for at, message in check_section(salvaged.site, salvaged.site.kpi, salvaged.profiles):
        written = salvaged.keep(tuple(at), message)
        issue = salvaged.doc.issue(written, message) if written is not None else None
        if issue is not None and issue not in found and issue not in issues:
            issues.append(issue)
    return issues


def _modbus_plans(loaded: LoadedSite, issues: list[ConfigIssue]) -> dict[str, ReadPlan]:
    plans: dict[str, ReadPlan] = {}
    seen: set[ConfigIssue] = set()  # devices sharing a profile share its problems: say each once
    for i, device in enumerate(loaded.site.devices):
        if not isinstance(device, ModbusDeviceConfig):
            continue
        profile = loaded.profiles[device.profile]
        limit = device.max_registers_per_request
        wide = [p for p in profile.points if not p.kind.is_bit and point_width(p) > (limit or 125)]
        if limit is not None and wide:  # the site's setting is what to fix, not the profile
            widest = max(wide, key=point_width)
            file, line, col = loaded.profile_position(device.profile, ("points", profile.points.index(widest)))
            issues.append(
                loaded.issue(
                    ("devices", i, "max_registers_per_request"),
                    f"{limit} is too small for profile {device.profile}: point '{widest.name}' ({widest.type.value}, "
                    f"{file}:{line}:{col}) spans {point_width(widest)} registers and a value cannot be split over "
                    f"two requests; set at least {point_width(widest)}, or remove the setting",
                )
            )
            continue
        try:
            plans[device.name] = build_read_plan(profile, device)
        except ConfigError as e:
            for issue in e.issues:
                found = _reposition(loaded, device.profile, issue)
                if found not in seen:
                    seen.add(found)
                    issues.append(found)
    return plans


def _reposition(loaded: LoadedSite, profile: str, issue: ConfigIssue) -> ConfigIssue:
    """A plan issue names a point of the profile (without a line): place it at that point in the profile file."""
    match = _POINT_PATH.match(issue.path)
    if issue.line > 0 or match is None:
        return issue
    path: tuple[str | int, ...] = ("points", int(match.group(1)))
    if match.group(2):
        path = (*path, match.group(2))
    return loaded.profile_issue(profile, path, issue.message, issue.severity)


def _opcua_plans(loaded: LoadedSite, issues: list[ConfigIssue]) -> dict[str, DevicePlan]:
    devices = [(i, d) for i, d in enumerate(loaded.site.devices) if isinstance(d, OpcuaDeviceConfig)]
    if not devices:
        return {}
    from agent.sources.opcua.plan import compile_device  # asyncua: ~25 MB, only for sites that use OPC UA

    plans: dict[str, DevicePlan] = {}
    for i, device in devices:
        try:
            plans[device.name] = compile_device(device, loaded.path.parent)
        except ValueError as e:
            issues.append(loaded.issue(("devices", i, "points"), f"{e}; fix the point's node_id or browse_path"))
    return plans
