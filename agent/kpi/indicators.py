"""KPIs built from terms (weighted window totals or means of channels), and the context their builders share.

The builders: agent.kpi.lines (process lines), agent.kpi.electrical (power factor, renewable share, balances),
agent.kpi.equipment, agent.kpi.park.

An :class:`Indicator` produces :class:`~agent.model.KpiValue` for one period of one window. :class:`TermKpi` is
the common case: a value computed from named terms, with coverage the least covered input's share of the period,
quality good only when coverage reached the KPI's minimum, and a grade against a level row when one applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from agent.config.kpi import CreditConfig, FuelConfig, KpiSectionConfig, PointRefConfig
from agent.kpi.benchmarks import LevelRow, LevelTable, grade
from agent.kpi.channels import Channel, Term, TermValue
from agent.kpi.factors import FactorTable, load_factors
from agent.kpi.windows import WindowSpec
from agent.model import Grade, KpiValue, Quality, Role


class ChannelSource(Protocol):
    """What builders need from the engine: a channel for a point reference, used in the given windows."""

    def channel(self, ref: PointRefConfig, windows: Sequence[WindowSpec]) -> Channel: ...

    def derived(
        self,
        key: str,
        inputs: Sequence[PointRefConfig],
        fn: Callable[[Sequence[float]], float | None],
        windows: Sequence[WindowSpec],
    ) -> Channel:
        """A rate computed from the latest readings of ``inputs`` (one device) each time ``inputs[0]`` is read."""
        ...

    def has_role(self, device: str, role: Role) -> bool: ...


class Indicator(Protocol):
    scope: str
    windows: tuple[WindowSpec, ...]

    def final_until(self, window: str) -> float: ...

    def update(self, now: float) -> None:
        """Called once per evaluation before ``values``."""
        ...

    def values(self, spec: WindowSpec, start: float, end: float, now: float, final: bool) -> list[KpiValue]: ...


def _quality(coverage: float, coverage_min: float, value: float | None, present: bool) -> Quality:
    if not present:
        return Quality.BAD
    return Quality.GOOD if value is not None and coverage >= coverage_min else Quality.UNCERTAIN


@dataclass(slots=True)
class TermKpi:
    """One KPI: ``compute`` maps term values to the KPI value (None = undefined, e.g. no production)."""

    name: str
    scope: str
    unit: str
    terms: dict[str, Term]
    compute: Callable[[Mapping[str, float]], float | None]
    windows: tuple[WindowSpec, ...]
    coverage_min: float
    level: LevelRow | None = None
    detail: Callable[[Mapping[str, float]], dict[str, float]] | None = None
    reference: str = ""
    target: Callable[[float], tuple[float | None, str]] | None = None  # distance to a target and its text
    # why a value is implausible (then uncertain, with that ``reason``), or None when it is plausible
    check: Callable[[float | None, Mapping[str, float]], str | None] | None = None
    # what a reader must know about a value (a negative net CO2, an upper bound): its ``reason``, quality unchanged
    explain: Callable[[float | None, Mapping[str, float]], str | None] | None = None
    ungraded: str = ""  # why the level row does not grade this line: the value is published without a grade
    annual_coverage_min: float = 0.99  # a grade on a year or 12mo window needs this coverage (the whole period)

    def final_until(self, window: str) -> float:
        return min((t.final_until(window) for t in self.terms.values()), default=float("inf"))

    def update(self, now: float) -> None:
        pass

    def values(self, spec: WindowSpec, start: float, end: float, now: float, final: bool) -> list[KpiValue]:
        at: dict[str, TermValue] = {k: t.at(spec.name, start) for k, t in self.terms.items()}
        span = end - start  # the whole window, also while it is open (a running value is provisional)
        covered = min((v.covered_s for v in at.values()), default=0.0)
        coverage = max(0.0, min(1.0, covered / span))
        present = any(v.present for v in at.values())
        nums = {k: v.value for k, v in at.items()}
        value = self.compute(nums) if present else None
        if value is not None and not math.isfinite(value):
            value = None
        quality = _quality(coverage, self.coverage_min, value, present)
        detail = {"final": 1.0 if final else 0.0, "covered_s": covered}
        if self.detail is not None and present:
            detail |= self.detail(nums)
        g: Grade | None = None
        distance: float | None = None
        reference = self.reference
        reason = ""
        if self.check is not None and present and (why := self.check(value, nums)) is not None:
            quality = Quality.UNCERTAIN if quality is Quality.GOOD else quality
            detail["implausible"] = 1.0
            reason = why
        if self.explain is not None and present and (why := self.explain(value, nums)) is not None:
            reason = f"{reason}; {why}" if reason else why
        notes = [reason, self.ungraded] if self.ungraded else [reason]
        bridges = [v.bridge for v in at.values() if v.bridge is not None]
        if spec.calendar and bridges:
            notes.append(
                f"exact totals, outage {_local(min(b[0] for b in bridges), spec.tz)}-"
                f"{_local(max(b[1] for b in bridges), spec.tz)}"
            )
        seeded = max((v.seeded for v in at.values()), default=0)
        if seeded:
            detail["seeded_months"] = float(seeded)
            notes.append(f"{seeded} month(s) seeded from the line's history file, not measured by this agent")
        short = self._short_period(spec, start, coverage)
        if short:
            notes.append(short)
        reason = "; ".join(x for x in notes if x)
        if self.level is not None:  # the row first, then what this KPI adds (basis, method)
            reference = "; ".join(x for x in (self.level.reference(), self.reference) if x)
            if value is not None and quality is Quality.GOOD and not short:
                r = grade(value, self.level)
                g, distance = r.grade, r.distance
                detail |= {"to_benchmark": r.to_benchmark, "to_baseline": r.to_baseline}
        elif self.target is not None and value is not None and quality is Quality.GOOD:
            distance, reference = self.target(value)
            if distance is not None:  # also in detail: the wire carries ``distance`` only with a grade
                detail["to_target"] = distance
        return [
            KpiValue(
                self.name,
                self.scope,
                value,
                self.unit,
                spec.name,
                start,
                end,
                coverage,
                quality,
                now,
                g,
                distance,
                reference,
                detail,
                final=final,
                reason=reason,
            )
        ]

    def _short_period(self, spec: WindowSpec, start: float, coverage: float) -> str:
        """Why a graded year or 12mo value is not graded: less than ``annual_coverage_min`` of it covered, with the
        months short of it named; "" otherwise."""
        if self.level is None or spec.name not in ("year", "12mo") or coverage >= self.annual_coverage_min:
            return ""
        months = sorted({m for t in self.terms.values() for m in t.short_months(spec.name, start, 0.99)})
        names = ", ".join(_local(m, spec.tz, "%Y-%m") for m in months) or "none whole"
        return (
            f"not graded: the {spec.name} is {coverage * 100:.1f} % covered, an annual grade needs "
            f"{self.annual_coverage_min * 100:g} % (kpi.annual_grade_coverage_min); months missing: {names}"
        )


def _local(ts: float, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime(fmt)


def ratio(num: str, den: str, factor: float = 1.0) -> Callable[[Mapping[str, float]], float | None]:
    def f(v: Mapping[str, float]) -> float | None:
        d = v[den]
        return v[num] / d * factor if abs(d) > 1e-12 else None

    return f


def total(key: str) -> Callable[[Mapping[str, float]], float | None]:
    return lambda v: v[key]


@dataclass(slots=True)
class Context:
    """Shared inputs of the builders."""

    source: ChannelSource
    factors: FactorTable
    windows: tuple[WindowSpec, ...]  # the section's default windows
    tz: str
    shift_starts: tuple[int, ...]
    coverage_min: float
    electricity_kgce_per_kwh: float
    electricity_method: str  # "equivalent" or "equal_value": how electricity in and out is valued
    grid_tco2_per_mwh: float
    renewable_tco2_per_mwh: float
    renewable_devices: frozenset[str]
    grid_reference: str = ""
    annual_coverage_min: float = 0.99
    level_for: Callable[[str | None, str | None], LevelRow | None] = lambda i, e: None
    notes: list[str] = field(default_factory=list)
    lines: dict[str, LineTerms] = field(default_factory=dict)  # filled by line_kpis, read by the park KPIs

    def specs(self, names: Sequence[str] | None) -> tuple[WindowSpec, ...]:
        """The window specs for a declaration's ``windows`` (the section's default when not given)."""
        if not names:
            return self.windows
        return tuple(WindowSpec(n, self.tz, self.shift_starts) for n in names)

    def term(self, refs: Sequence[PointRefConfig], windows: Sequence[WindowSpec], weight: float = 1.0) -> Term:
        return Term([(self.source.channel(r, windows), weight) for r in refs])

    def fuel_kgce(self, f: FuelConfig | CreditConfig) -> float:
        """kgce per unit. Electricity (a credit of exported power, or a fuel entry of carrier electricity) is valued
        with the section's electricity method, like the line's consumption: never one method in and another out."""
        if isinstance(f, CreditConfig) and f.kgce_per_unit is not None:
            return f.kgce_per_unit
        if f.carrier == "electricity" and f.lhv_gj_per_unit is None:
            return self.electricity_kgce_per_kwh
        return self.fuel_gj(f) * self.factors.kgce_per_gj()

    def fuel_kgce_equivalent(self, f: FuelConfig | CreditConfig) -> float:
        """kgce per unit with electricity at its equivalent (calorific) value, 0.1229 kgce/kWh."""
        if f.carrier == "electricity" and f.lhv_gj_per_unit is None:
            return self.factors.carriers["electricity"].kgce_per_unit
        return self.fuel_kgce(f)

    def fuel_gj(self, f: FuelConfig | CreditConfig) -> float:
        """The one energy content (GJ per unit) used for both kgce and CO2: measured first (GB/T 2589), else the
        carrier's coefficient."""
        if f.lhv_gj_per_unit is not None:
            return f.lhv_gj_per_unit
        if isinstance(f, CreditConfig) and f.kgce_per_unit is not None:
            return f.kgce_per_unit / self.factors.kgce_per_gj()
        assert f.carrier is not None
        return self.factors.ncv_gj(f.carrier)

    def fuel_tco2(self, f: FuelConfig) -> float:
        """tCO2 per unit: combustion (energy x carbon content x oxidation x 44/12), indirect (heat and steam at the
        heat factor, electricity at the grid factor) or 0 where the factor table says why."""
        return self._tco2(f.carrier, f.co2_fuel, self.fuel_gj(f))

    def _tco2(self, carrier: str, co2_fuel: str | None, gj: float) -> float:
        c = self.factors.carriers[carrier]
        if c.co2_indirect == "heat":
            return gj * self.factors.heat_tco2_per_gj
        if c.co2_indirect == "grid":
            return self._kwh(carrier, gj) * self.grid_tco2_per_mwh / 1000.0
        fuel = self.factors.fuels.get(co2_fuel or c.co2_fuel or "")
        return 0.0 if fuel is None else fuel.tco2_per_unit(gj)

    def _kwh(self, carrier: str | None, gj: float) -> float:
        """kWh per unit: 1 for a carrier metered in kWh, else the energy content in kWh."""
        if carrier is not None and self.factors.carriers[carrier].unit == "kWh":
            return 1.0
        return gj * 1e6 / 3600.0

    def credit_tco2(self, c: CreditConfig) -> float:
        """tCO2 per unit the credit takes off the line's CO2 (0 for ``co2: none``)."""
        gj = self.fuel_gj(c)
        if c.co2 == "factor":
            return c.co2_tco2_per_unit or 0.0
        if c.co2 == "heat":
            return gj * self.factors.heat_tco2_per_gj
        if c.co2 == "grid":
            return self._kwh(c.carrier, gj) * self.grid_tco2_per_mwh / 1000.0
        if c.co2 == "fuel" and c.carrier is not None:
            return self._tco2(c.carrier, None, gj)
        return 0.0


@dataclass(frozen=True, slots=True)
class LineTerms:
    """What the park totals need of a line: net kgce, CO2, and the kgce of renewable electricity and feedstock."""

    kgce: Term
    co2: Term
    renewable_kgce: Term
    feedstock_kgce: Term


def make_context(
    cfg: KpiSectionConfig,
    source: ChannelSource,
    windows: tuple[WindowSpec, ...],
    tz: str,
    shifts: tuple[int, ...],
    renewable: frozenset[str],
    table: LevelTable,
) -> Context:
    """The builders' context for a kpi section: the factor table, the electricity coefficient of the section's
    method, the grid factor (the site's own or the table's) and the level rows."""
    f = cfg.factors
    factors = load_factors()
    if f.grid_tco2_per_mwh is not None:
        grid, grid_ref = f.grid_tco2_per_mwh, f"grid factor {f.grid_tco2_per_mwh} tCO2/MWh set by the site"
    else:
        g = factors.grid_factor(f.grid_year, f.grid_scope)
        if g is None:
            raise ValueError(f"no grid factor for {f.grid_year}/{f.grid_scope}")
        grid = g.tco2_per_mwh
        grid_ref = f"grid factor {g.scope} {g.year} {g.tco2_per_mwh} tCO2/MWh, {g.document}, status {g.status}"
    elec = factors.carriers["electricity"].kgce_per_unit
    if f.electricity_method == "equal_value" and f.electricity_equal_value_kgce_per_kwh is not None:
        elec = f.electricity_equal_value_kgce_per_kwh
    return Context(
        source=source,
        factors=factors,
        windows=windows,
        tz=tz,
        shift_starts=shifts,
        coverage_min=cfg.coverage_min,
        electricity_kgce_per_kwh=elec,
        electricity_method=f.electricity_method,
        grid_tco2_per_mwh=grid,
        renewable_tco2_per_mwh=f.renewable_tco2_per_mwh,
        renewable_devices=renewable,
        grid_reference=grid_ref,
        annual_coverage_min=cfg.annual_grade_coverage_min,
        level_for=lambda ind, ed: None if ind is None else table.find(ind, ed),
    )
