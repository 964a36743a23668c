# size: one checker of the whole kpi section, a method per declaration kind (407 lines)
"""Checks of the site file's ``kpi:`` section against the site's devices, their profiles, the level table, the
factor table and the KPI names the section declares. Run by the compile step (agent.runtime.compile); ``check`` is the same for a whole site."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from agent.config.kpi import (
    RENAMED_KPIS,
    BaselineConfig,
    CreditConfig,
    EquipmentConfig,
    FuelConfig,
    Issue,
    KpiSectionConfig,
    LineConfig,
    Path,
    PointRefConfig,
    declared_kpis,
)
from agent.config.kpi.formula import parse, references
from agent.config.kpi.windows import check_window_name
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.kpi.benchmarks import LevelTable, load_levels, site_levels
from agent.kpi.factors import load_factors
from agent.model import Role


def check(site: SiteConfig, profiles: Mapping[str, ProfileConfig]) -> list[Issue]:
    """Every reference of the kpi section that does not resolve, with its path in the site file, e.g.
    ``(("kpi", "lines", 0, "electricity", 1, "device"), "unknown device 'kiln-meter' (did you mean ...?)")``."""
    return [] if site.kpi is None else check_section(site, site.kpi, profiles)


def check_section(site: SiteConfig, section: KpiSectionConfig, profiles: Mapping[str, ProfileConfig]) -> list[Issue]:
    return _Checker(site, section, profiles).run()


class _Checker:
    def __init__(self, site: SiteConfig, section: KpiSectionConfig, profiles: Mapping[str, ProfileConfig]) -> None:
        self.site = site
        self.section = section
        self.devices = {d.name: d for d in site.devices}
        self.profiles = profiles
        self.issues: list[Issue] = []

    def run(self) -> list[Issue]:
        s = self.section
        factors = load_factors()
        levels = load_levels()
        table = site_levels(s.levels, levels)
        indicators = table.indicators()
        self.windows(("kpi", "windows"), s.windows)
        if (
            s.factors.grid_tco2_per_mwh is None
            and factors.grid_factor(s.factors.grid_year, s.factors.grid_scope) is None
        ):
            known = sorted({f"{g.year}/{g.scope}" for g in factors.grid})
            self.add(
                ("kpi", "factors", "grid_scope"),
                f"no grid factor for {s.factors.grid_year}/{s.factors.grid_scope}; known: {', '.join(known)}",
            )
        for i, line in enumerate(s.lines):
            at: Path = ("kpi", "lines", i)
            if line.indicator is not None:
                editions = {r.edition for r in levels.rows if r.indicator == line.indicator}
                editions |= {lv.edition for lv in s.levels if lv.indicator == line.indicator}
                if line.indicator not in indicators:
                    self.add(
                        (*at, "indicator"),
                        f"unknown indicator '{line.indicator}'{_suggest(line.indicator, indicators)}",
                    )
                elif line.level_edition is not None and line.level_edition not in editions:
                    self.add(
                        (*at, "level_edition"),
                        f"indicator '{line.indicator}' has no edition {line.level_edition}; has {', '.join(sorted(editions))}",
                    )
                else:
                    self.graded_line(at, line, table)
            for field in ("production", "electricity", "water", "waste_heat"):
                self.refs((*at, field), getattr(line, field))
            self.fuels((*at, "fuels"), line.fuels)
            self.credits((*at, "credits"), line.credits)
            self.no_negative_scale(at, line)
            self.corrections(at, line, table)
            self.windows((*at, "windows"), line.windows)
            if line.baseline is not None:
                self.baseline((*at, "baseline"), line.baseline, line)
        for i, eq in enumerate(s.equipment):
            self.equipment(("kpi", "equipment", i), eq)
        for i, d in enumerate(s.demand):
            self.refs(("kpi", "demand", i, "meters"), d.meters)
            self.windows(("kpi", "demand", i, "windows"), d.windows)
        for i, pf in enumerate(s.power_factor):
            self.refs(("kpi", "power_factor", i, "active"), pf.active)
            self.refs(("kpi", "power_factor", i, "reactive"), pf.reactive)
            self.refs(("kpi", "power_factor", i, "reactive_export"), pf.reactive_export)
        for i, r in enumerate(s.renewable):
            self.refs(("kpi", "renewable", i, "total"), r.total)
            if r.renewable is not None:
                self.refs(("kpi", "renewable", i, "renewable"), r.renewable)
            elif not any(getattr(d, "renewable", False) for d in self.site.devices):
                self.add(("kpi", "renewable", i), "no renewable meters: list them or flag devices renewable: true")
        for i, b in enumerate(s.balance):
            self.refs(("kpi", "balance", i, "main"), [b.main], index=False)
            self.refs(("kpi", "balance", i, "subs"), b.subs)
        if s.park is not None:
            known = [x.name for x in s.lines]
            scopes = {
                x.name
                for group in (s.lines, s.equipment, s.demand, s.power_factor, s.renewable, s.balance)
                for x in group
            }
            if s.park.name in scopes:
                self.add(
                    ("kpi", "park", "name"),
                    f"'{s.park.name}' already names a line or another declaration: give the park its own name",
                )
            for i, n in enumerate(s.park.lines or []):
                if n not in known:
                    self.add(("kpi", "park", "lines", i), f"unknown line '{n}'{_suggest(n, known)}")
            self.windows(("kpi", "park", "windows"), s.park.windows)
        self.names()
        self.custom()
        return sorted(self.issues, key=lambda it: tuple(str(p) for p in it[0]))

    def graded_line(self, at: Path, line: LineConfig, table: LevelTable) -> None:
        """The indicator's row must grade a KPI the line has, in the same unit."""
        assert line.indicator is not None
        row = table.find(line.indicator, line.level_edition)
        if row is None:
            return
        measure = "kWh" if row.kpi == "sec_kwh_per_t" else "kgce"
        unit = f"{measure}/{line.production_unit}"
        if row.unit != unit:
            per = row.unit.split("/", 1)[-1]
            self.add(
                (*at, "production_unit"),
                f"indicator '{line.indicator}' is graded in {row.unit} but this line gives {unit}: "
                f"set production_unit: {per} and count production in {per}",
            )
        if measure == "kWh" and not line.electricity:
            self.add(
                (*at, "electricity"),
                f"indicator '{line.indicator}' grades kWh per unit: list the line's electricity meters",
            )
        if "fuel" in row.needs and not line.fuels and not line.no_fuel:
            self.add(
                (*at, "fuels"),
                f"indicator '{line.indicator}' grades comprehensive energy ({row.unit}), which needs the line's "
                "fuels: list them under fuels, or set no_fuel: true with no_fuel_reason if the line burns nothing",
            )

    def add(self, path: Path, message: str) -> None:
        self.issues.append((path, message))

    def windows(self, path: Path, names: list[str] | None) -> None:
        for i, n in enumerate(names or []):
            why = check_window_name(n)
            if why:
                self.add((*path, i), why)

    def ref(self, path: Path, ref: PointRefConfig) -> None:
        dev = self.devices.get(ref.device)
        if dev is None:
            self.add((*path, "device"), f"unknown device '{ref.device}'{_suggest(ref.device, self.devices)}")
            return
        known = self._points(dev)
        if known is None:
            return
        what, points = known
        if ref.point is not None:
            names = {name for name, _ in points}
            if ref.point not in names:
                self.add(
                    (*path, "point"),
                    f"device '{ref.device}' ({what}) has no point '{ref.point}'{_suggest(ref.point, names)}",
                )
        elif ref.role is not None and ref.role not in {role for _, role in points}:
            roles = sorted(role.value for _, role in points if role is not None)
            self.add(
                (*path, "role"),
                f"device '{ref.device}' ({what}) has no point with role {ref.role.value}; "
                f"its roles: {', '.join(roles) or 'none'}",
            )

    def _points(self, dev: object) -> tuple[str, list[tuple[str, Role | None]]] | None:
        """The device's points (name, role) and where they are declared: its profile (Modbus) or its own
        ``points`` list (OPC UA); None when unknown (a profile that did not load)."""
        profile = self.profiles.get(str(getattr(dev, "profile", "") or ""))
        if profile is not None:
            return f"profile {profile.profile}", [(p.name, p.role) for p in profile.points]
        own = getattr(dev, "points", None)
        if isinstance(own, list) and all(hasattr(p, "name") and hasattr(p, "role") for p in own):
            return "its points", [(str(p.name), p.role) for p in own]
        return None

    def refs(self, path: Path, refs: list[PointRefConfig], *, index: bool = True) -> None:
        for i, r in enumerate(refs):
            self.ref((*path, i) if index else path, r)

    def fuels(self, path: Path, fuels: list[FuelConfig], *, line: bool = True) -> None:
        table = load_factors()
        for i, f in enumerate(fuels):
            self.ref((*path, i), f)
            if f.carrier not in table.carriers:
                self.add((*path, i, "carrier"), f"unknown carrier '{f.carrier}'{_suggest(f.carrier, table.carriers)}")
            if f.co2_fuel is not None and f.co2_fuel not in table.fuels:
                self.add((*path, i, "co2_fuel"), f"unknown fuel '{f.co2_fuel}'{_suggest(f.co2_fuel, table.fuels)}")
            if f.method == "enthalpy":
                self.enthalpy((*path, i), f, line)

    def enthalpy(self, path: Path, f: FuelConfig, line: bool = True) -> None:
        """method: enthalpy values a line's purchased steam or hot water (a carrier at the heat factor) from the
        points it reads: the supply's pressure and temperature (given, or the device's roles), the measured return."""
        carrier = load_factors().carriers.get(f.carrier)
        if not line:
            self.add((*path, "method"), "method: enthalpy applies to a line's purchased steam or hot water only")
        elif carrier is not None and carrier.co2_indirect != "heat":
            self.add(
                (*path, "method"),
                f"method: enthalpy values purchased steam or hot water; carrier '{f.carrier}' is not one (use a "
                "steam carrier or heat)",
            )
        p, t, ret = f.enthalpy_points()
        for field, ref in (("pressure", p), ("temperature", t), ("return_temperature", ret)):
            if ref is None:
                continue
            before = len(self.issues)
            self.ref((*path, field), ref)
            if len(self.issues) > before and getattr(f, field) is None:  # a default role: say what it is for
                _, why = self.issues.pop()
                self.add(
                    (*path, "method"),
                    f"method: enthalpy needs the steam's {field}: {why}; give {field}: {{device, point or role}}",
                )

    def credits(self, path: Path, credits: list[CreditConfig]) -> None:
        table = load_factors()
        for i, c in enumerate(credits):
            self.ref((*path, i), c)
            if c.carrier is None:
                continue
            carrier = table.carriers.get(c.carrier)
            if carrier is None:
                self.add((*path, i, "carrier"), f"unknown carrier '{c.carrier}'{_suggest(c.carrier, table.carriers)}")
            elif c.co2 == "fuel" and carrier.co2_fuel is None:
                self.add(
                    (*path, i, "co2"),
                    f"carrier '{c.carrier}' has no fuel CO2 factor ({carrier.co2_none or 'not a combustion fuel'}): "
                    "use co2: grid, heat, none or factor with co2_tco2_per_unit",
                )

    def no_negative_scale(self, at: Path, line: LineConfig) -> None:
        """A negative scale on an energy input would subtract energy silently: recovered or exported energy is a
        credit, declared as such."""
        for field in ("electricity", "fuels", "production", "credits"):
            for i, r in enumerate(getattr(line, field)):
                if r.scale < 0:
                    self.add(
                        (*at, field, i, "scale"),
                        f"negative scale {r.scale:g}: declare recovered or exported energy under credits "
                        "(with its carrier and CO2 treatment) and give the meter a positive scale",
                    )

    def corrections(self, at: Path, line: LineConfig, table: LevelTable) -> None:
        """``corrections`` names only inputs of the corrections of the line's level row."""
        if not line.corrections:
            return
        row = table.find(line.indicator, line.level_edition) if line.indicator else None
        wanted: set[str] = set()
        for c in row.corrections if row is not None else ():
            wanted |= c.inputs
        for key in line.corrections:
            if key not in wanted:
                what = f"indicator '{line.indicator}'" if line.indicator else "a line without indicator"
                takes = ", ".join(sorted(wanted)) or "none"
                self.add((*at, "corrections", key), f"{what} has no correction '{key}'; it takes: {takes}")

    def baseline(self, path: Path, b: BaselineConfig, line: LineConfig) -> None:
        if b.energy == "electricity_kwh" and not line.electricity:
            self.add((*path, "energy"), "a baseline of electricity_kwh needs the line's electricity meters")
        if b.energy == "energy_kgce" and not (line.electricity or line.fuels):
            self.add((*path, "energy"), "a baseline of energy_kgce needs the line's energy inputs")
        why = check_window_name(b.period)
        if why:
            self.add((*path, "period"), why)
        for i, v in enumerate(b.variables):
            if v.point is not None:
                self.ref((*path, "variables", i, "point"), v.point)
        if b.coefficients is not None:
            want = {"intercept"} | {v.name for v in b.variables}
            if set(b.coefficients) != want:
                self.add((*path, "coefficients"), f"coefficients must be exactly: {', '.join(sorted(want))}")

    def equipment(self, path: Path, eq: EquipmentConfig) -> None:
        if eq.device not in self.devices:
            self.add((*path, "device"), f"unknown device '{eq.device}'{_suggest(eq.device, self.devices)}")
            return
        self.windows((*path, "windows"), eq.windows)
        for field, value in eq:
            if isinstance(value, FuelConfig):
                self.fuels_one((*path, field), value)
            elif isinstance(value, PointRefConfig):
                self.ref((*path, field), value)
            elif isinstance(value, list) and value and isinstance(value[0], FuelConfig):
                self.fuels((*path, field), value, line=False)

    def fuels_one(self, path: Path, fuel: FuelConfig) -> None:
        table = load_factors()
        self.ref(path, fuel)
        if fuel.method == "enthalpy":
            self.enthalpy(path, fuel, line=False)
        if fuel.carrier not in table.carriers:
            self.add((*path, "carrier"), f"unknown carrier '{fuel.carrier}'{_suggest(fuel.carrier, table.carriers)}")

    def names(self) -> None:
        seen: dict[str, Path] = {}
        groups: list[tuple[str, list[str]]] = [
            ("lines", [x.name for x in self.section.lines]),
            ("equipment", [x.name for x in self.section.equipment]),
            ("demand", [x.name for x in self.section.demand]),
            ("power_factor", [x.name for x in self.section.power_factor]),
            ("renewable", [x.name for x in self.section.renewable]),
            ("balance", [x.name for x in self.section.balance]),
        ]
        for group, names in groups:
            for i, n in enumerate(names):
                path: Path = ("kpi", group, i, "name")
                if n in seen and seen[n][1] == group:
                    self.add(path, f"'{n}' is declared twice in {group} (also at index {seen[n][2]})")
                seen.setdefault(n, path)

    def custom(self) -> None:
        known = declared_kpis(self.section)
        customs = {f"{c.scope}.{c.name}": i for i, c in enumerate(self.section.custom)}
        for i, c in enumerate(self.section.custom):
            if customs[f"{c.scope}.{c.name}"] != i:
                self.add(("kpi", "custom", i, "name"), f"KPI '{c.scope}.{c.name}' is declared twice")
        for name, i in customs.items():
            if self._cycle(name, customs, frozenset()):
                self.add(("kpi", "custom", i, "formula"), f"custom KPI '{name}' depends on itself through its formula")
        for i, c in enumerate(self.section.custom):
            kpis, points = references(parse(c.formula))
            mine = set(c.windows or self.section.windows)
            for k in kpis:
                if k not in known and (renamed := self._renamed(k)):
                    self.add(("kpi", "custom", i, "formula"), renamed)
                elif k not in known:
                    self.add(("kpi", "custom", i, "formula"), f"unknown KPI '{k}'{_suggest(k, known)}")
                elif missing := sorted(mine - self._windows_of(known[k])):
                    self.add(
                        ("kpi", "custom", i, "windows"),
                        f"'{k}' is not computed in window {', '.join(missing)}: give this KPI the windows of the "
                        "KPIs its formula uses",
                    )
            for p in points:
                dev = self.devices.get(p.device)
                if dev is None:
                    self.add(("kpi", "custom", i, "formula"), f"unknown device '{p.device}' in {p.fn}()")
                    continue
                declared = self._points(dev)
                if declared is not None:
                    names = {n for n, _ in declared[1]} | {r.value for _, r in declared[1] if r is not None}
                    if p.point not in names:
                        self.add(
                            ("kpi", "custom", i, "formula"),
                            f"device '{p.device}' has no point or role '{p.point}'{_suggest(p.point, names)}",
                        )
            self.windows(("kpi", "custom", i, "windows"), c.windows)

    def _renamed(self, name: str) -> str:
        """The message for a KPI that has a new name (e.g. a pump's efficiency, now its unit efficiency)."""
        scope, _, kpi = name.partition(".")
        for eq in self.section.equipment:
            new = RENAMED_KPIS.get((eq.kind, kpi))
            if eq.name == scope and new:
                return (
                    f"'{name}' is now '{scope}.{new}': hydraulic power over electric input is the {eq.kind} and "
                    "motor together, not the shaft efficiency"
                )
        return ""

    def _windows_of(self, path: Path) -> set[str]:
        """The windows of the declaration at ``path`` (("kpi", group, index), or ("kpi", "park"))."""
        if path[1] == "park":
            assert self.section.park is not None
            return set(self.section.park.windows or self.section.windows)
        group, index = path[1], path[2]
        assert isinstance(group, str) and isinstance(index, int)
        windows: list[str] | None = getattr(getattr(self.section, group)[index], "windows", None)
        return set(windows or self.section.windows)

    def _cycle(self, name: str, customs: Mapping[str, int], path: frozenset[str]) -> bool:
        """Whether following ``name``'s references among custom KPIs comes back to a KPI on ``path``."""
        if name in path:
            return True
        c = self.section.custom[customs[name]]
        refs = [k for k in references(parse(c.formula))[0] if k in customs]
        return any(self._cycle(k, customs, path | {name}) for k in refs)


def _suggest(word: str, options: Iterable[str]) -> str:
    names = [str(o) for o in options]
    close = difflib.get_close_matches(word, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
