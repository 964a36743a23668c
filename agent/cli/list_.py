"""``energy-agent list profiles|roles|indicators``: what a site file can name, without reading the source.

``profiles``: the device profiles of the shipped library (where this command finds it: the repository's
``device_profiles/``, the installed one beside the venv, or ``$ENERGY_AGENT_PROFILES``), and those of a site's
``profile_dirs`` with ``--site``: name, category, vendor and model, number of points, description.
``roles``: the point roles the KPI engine uses (a point's ``role:``), with the unit a point must deliver and
whether it is a counter (a cumulative total) or a rate/level. ``indicators``: the level-table indicators a
``kpi.lines[].indicator`` may name, with the graded KPI, unit, benchmark and baseline (or the standard's grades),
edition and verification status. Exit 0, or 78 when a profile does not validate (each problem listed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config.load import load_any_profile_checked, load_site, shipped_profile_dir
from agent.config.refuse import refuse
from agent.errors import ConfigError, ConfigIssue
from agent.model import COUNTER_ROLES, Role

NAME = "list"
HELP = "list the shipped device profiles, the point roles, or the benchmark-level indicators"

# The unit a role's suffix names (Role's docstring: the suffix is the unit the point must be delivered in).
_SUFFIX_UNITS = {
    "kwh": "kWh",
    "kvarh": "kvarh",
    "kw": "kW",
    "kvar": "kvar",
    "kva": "kVA",
    "v": "V",
    "a": "A",
    "hz": "Hz",
    "t": "t",
    "tph": "t/h",
    "m3": "m3",
    "m3h": "m3/h",
    "m3min": "m3/min",
    "mpa": "MPa",
    "c": "°C",
    "gj": "GJ",
    "rpm": "rpm",
    "m": "m",
    "h": "h",
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["profiles", "roles", "indicators"], help="what to list")
    parser.add_argument("--site", type=Path, default=None, help="profiles: also those of this site's profile_dirs")


def run(args: argparse.Namespace) -> int:
    if args.what == "roles":
        rows = [[role.value, role_unit(role), "counter" if role in COUNTER_ROLES else "rate/level"] for role in Role]
        print(_table(["role", "unit", "kind"], rows))
        return 0
    if args.what == "indicators":
        return _indicators()
    return _profiles(args.site)


def role_unit(role: Role) -> str:
    """``energy_import_kwh`` -> ``kWh``; ``power_factor`` -> ``""`` (a ratio)."""
    return _SUFFIX_UNITS.get(role.value.rsplit("_", 1)[-1], "")


def _profiles(site: Path | None) -> int:
    folders = [shipped_profile_dir()]
    if site is not None:
        try:
            loaded = load_site(site)
        except ConfigError as exc:
            return refuse(exc)
        folders = [site.parent / d for d in loaded.site.profile_dirs] + folders
    issues: list[ConfigIssue] = []
    for folder in folders:
        rows = []
        for path in sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml")):
            try:
                profile, _ = load_any_profile_checked(path)
            except ConfigError as exc:
                issues += exc.issues
                continue
            made = " ".join(x for x in (profile.vendor, profile.model) if x) or "-"
            made = made if len(made) <= 32 else made[:31] + "…"
            category = profile.category if profile.protocol == "modbus" else f"{profile.category} (dlt645)"
            rows.append([profile.profile, category, made, str(len(profile.points)), profile.description])
        print(f"{folder} ({len(rows)} profiles):")
        print(_table(["profile", "category", "vendor/model", "points", "description"], rows, indent="  "))
    if issues:
        return refuse(ConfigError(issues), "energy-agent list: these profiles do not validate:")
    return 0


def _indicators() -> int:
    from agent.kpi.benchmarks import load_levels  # reads the level table only when asked

    rows = [
        [r.indicator, r.kind, r.kpi, r.unit, f"{r.benchmark:g}", f"{r.baseline:g}", r.edition, r.status, r.product]
        for r in sorted(load_levels().rows, key=lambda r: (r.indicator, r.edition))
    ]
    head = ["indicator", "kind", "kpi", "unit", "benchmark", "baseline", "edition", "status", "product"]
    print(_table(head, rows))
    print(
        "benchmark/baseline are 标杆/基准 for kind policy, grade 1/grade 3 for kind gb_quota; status OK = printed in "
        "the cited source, 2nd = a secondary source only, UNCONF = not confirmed (see agent/data/energy_levels.yaml)",
        file=sys.stderr,
    )
    return 0


def _table(head: list[str], rows: list[list[str]], indent: str = "") -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    for row in [head, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)
