"""KPIs built from terms (weighted window totals or means of channels): line, electrical and renewable KPIs.

An :class:`Indicator` produces :class:`~agent.model.KpiValue` for one period of one window. :class:`TermKpi` is
the common case: a value computed from named terms, with coverage the least covered input's share of the period,
quality good only when coverage reached the KPI's minimum, and a grade against a level row when one applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.config.kpi import (
    BalanceConfig,
    CreditConfig,
    FuelConfig,
    LineConfig,
    PointRefConfig,
    PowerFactorConfig,
    RenewableConfig,
)
from agent.kpi.benchmarks import LevelRow, corrected, grade
from agent.kpi.channels import Channel, Term, TermValue
from agent.kpi.factors import FactorTable
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
        if self.level is not None:
            reference = self.level.reference()
            if value is not None and quality is Quality.GOOD:
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
    grid_tco2_per_mwh: float
    renewable_tco2_per_mwh: float
    renewable_devices: frozenset[str]
    grid_reference: str = ""
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
        if isinstance(f, CreditConfig) and f.kgce_per_unit is not None:
            return f.kgce_per_unit
        return self.fuel_gj(f) * self.factors.kgce_per_gj()

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


def line_kpis(line: LineConfig, ctx: Context) -> list[TermKpi]:
    """Per-unit energy, carbon and water KPIs of one process line. Production is equivalent production (each point
    x its ``equivalent_factor``); energy and CO2 are net of the line's credits; the level row is corrected with the
    line's ``corrections``."""
    w = ctx.specs(line.windows)
    cov = ctx.coverage_min if line.coverage_min is None else line.coverage_min
    pu = line.production_unit
    prod = Term([(ctx.source.channel(r, w), r.equivalent_factor) for r in line.production])
    elec = ctx.term(line.electricity, w)
    renewable = [r for r in line.electricity if r.device in ctx.renewable_devices]
    gross_parts = [(ch, ctx.electricity_kgce_per_kwh) for ch in elec.channels()]
    gross_parts += [(ctx.source.channel(f, w), ctx.fuel_kgce(f)) for f in line.fuels]
    credit = Term([(ctx.source.channel(c, w), ctx.fuel_kgce(c)) for c in line.credits])
    kgce = Term(gross_parts + [(ch, -k) for ch, k in credit.parts])
    co2_parts: list[tuple[Channel, float]] = []
    for r in line.electricity:
        factor = ctx.renewable_tco2_per_mwh if r.device in ctx.renewable_devices else ctx.grid_tco2_per_mwh
        co2_parts.append((ctx.source.channel(r, w), factor / 1000.0))
    co2_parts += [(ctx.source.channel(f, w), ctx.fuel_tco2(f)) for f in line.fuels]
    co2_parts += [(ctx.source.channel(c, w), -ctx.credit_tco2(c)) for c in line.credits if c.co2 != "none"]
    co2 = Term(co2_parts)
    ctx.lines[line.name] = LineTerms(
        kgce,
        co2,
        Term([(ctx.source.channel(r, w), ctx.electricity_kgce_per_kwh) for r in renewable]),
        Term([(ctx.source.channel(f, w), ctx.fuel_kgce(f)) for f in line.fuels if f.feedstock]),
    )
    level = ctx.level_for(line.indicator, line.level_edition)
    if level is not None:
        level = corrected(level, line.corrections)

    def kpi(
        name: str,
        unit: str,
        terms: dict[str, Term],
        fn: Callable[[Mapping[str, float]], float | None],
        graded: bool = True,
    ) -> TermKpi:
        row = level if graded and level is not None and level.kpi == name else None
        return TermKpi(name, line.name, unit, terms, fn, w, cov, row)

    out = [kpi("production", pu, {"p": prod}, total("p"))]
    if line.electricity:
        out += [
            kpi("electricity_kwh", "kWh", {"e": elec}, total("e")),
            kpi("sec_kwh_per_t", f"kWh/{pu}", {"e": elec, "p": prod}, ratio("e", "p")),
        ]
    if line.electricity or line.fuels:
        out += [
            kpi("energy_kgce", "kgce", {"e": kgce}, total("e")),
            kpi("energy_kgce_per_t", f"kgce/{pu}", {"e": kgce, "p": prod}, ratio("e", "p")),
            kpi("co2_t", "tCO2", {"c": co2}, total("c")),
            kpi("co2_t_per_t", f"tCO2/{pu}", {"c": co2, "p": prod}, ratio("c", "p")),
        ]
        uncounted = sorted({f.carrier for f in line.fuels if ctx.factors.carriers[f.carrier].co2_none})
        why = "; ".join(f"{c} counted at 0 tCO2: {ctx.factors.carriers[c].co2_none}" for c in uncounted)
        out[-2].reference = out[-1].reference = "; ".join(x for x in (ctx.grid_reference, why) if x)
        if line.credits:
            gross = Term(gross_parts)
            out += [
                kpi("energy_gross_kgce", "kgce", {"e": gross}, total("e")),
                kpi("credit_kgce", "kgce", {"e": credit}, total("e")),
            ]
    if line.fuels:
        heat = Term([(ctx.source.channel(f, w), ctx.fuel_gj(f)) for f in line.fuels])
        # GJ/t = 1000 kJ/kg
        out.append(kpi("heat_kj_per_kg", "kJ/kg", {"h": heat, "p": prod}, ratio("h", "p", 1000.0)))
    if line.water:
        out.append(kpi("water_m3_per_t", f"m3/{pu}", {"w": ctx.term(line.water, w), "p": prod}, ratio("w", "p")))
    if line.waste_heat:
        wh = ctx.term(line.waste_heat, w)
        gj_per_kgce = 1.0 / ctx.factors.kgce_per_gj()
        out.append(kpi("waste_heat_gj", "GJ", {"h": wh}, total("h")))
        if line.electricity or line.fuels:
            gross_in = Term(gross_parts)
            out.append(kpi("waste_heat_share", "1", {"h": wh, "e": gross_in}, ratio("h", "e", 1.0 / gj_per_kgce)))
    return out


REVERSE_REACTIVE_RULE = (
    "reactive energy = import + export kvarh (reverse kvarh of over-compensation added, as supply companies bill it; "
    "status UNCONF: not confirmed in the text of 功率因数调整电费办法)"
)


def power_factor_kpi(cfg: PowerFactorConfig, ctx: Context) -> TermKpi:
    """Power factor of the window, kWh / sqrt(kWh² + kvarh²), with kvarh the import plus the export reactive energy
    where export counters are declared."""
    w = ctx.specs(cfg.windows)

    def pf(v: Mapping[str, float]) -> float | None:
        s = math.hypot(v["p"], v["q"])
        return v["p"] / s if s > 0 else None

    terms = {"p": ctx.term(cfg.active, w), "q": ctx.term(cfg.reactive + cfg.reactive_export, w)}
    if cfg.reactive_export:
        terms["x"] = ctx.term(cfg.reactive_export, w)

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        out = {"active_kwh": v["p"], "reactive_kvarh": v["q"]}
        if "x" in v:
            out["reactive_export_kvarh"] = v["x"]
        return out

    reference = REVERSE_REACTIVE_RULE if cfg.reactive_export else ""
    return TermKpi("power_factor", cfg.name, "1", terms, pf, w, ctx.coverage_min, detail=detail, reference=reference)


def renewable_kpi(cfg: RenewableConfig, ctx: Context, default_renewable: Sequence[PointRefConfig]) -> TermKpi:
    w = ctx.specs(cfg.windows)
    ren = ctx.term(cfg.renewable if cfg.renewable is not None else default_renewable, w)
    tot = ctx.term(cfg.total, w)
    add = not cfg.total_includes_renewable
    targets = sorted(cfg.targets)

    def share(v: Mapping[str, float]) -> float | None:
        denom = v["t"] + (v["r"] if add else 0.0)
        return v["r"] / denom if denom > 0 else None

    def target(value: float) -> tuple[float | None, str]:
        nxt = next((t for t in targets if value < t - 1e-12), None)
        ladder = " / ".join(f"{t * 100:g} %" for t in targets)
        if nxt is None:
            return value - targets[-1], f"park target ladder {ladder}: top target reached"
        return nxt - value, f"park target ladder {ladder}: next target {nxt * 100:g} %"

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        s = share(v)
        reached = max((t for t in targets if s is not None and s >= t - 1e-12), default=0.0)
        return {"renewable_kwh": v["r"], "total_kwh": v["t"] + (v["r"] if add else 0.0), "target_reached": reached}

    return TermKpi(
        "renewable_share", cfg.name, "1", {"r": ren, "t": tot}, share, w, ctx.coverage_min, detail=detail, target=target
    )


def balance_kpis(cfg: BalanceConfig, ctx: Context) -> list[TermKpi]:
    w = ctx.specs(cfg.windows)
    terms = {"m": ctx.term([cfg.main], w), "s": ctx.term(cfg.subs, w)}

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        share = (v["m"] - v["s"]) / v["m"] if v["m"] > 0 else 0.0
        return {
            "main_kwh": v["m"],
            "subs_kwh": v["s"],
            "limit": cfg.max_unaccounted_share,
            "exceeded": 1.0 if share > cfg.max_unaccounted_share else 0.0,
        }

    return [
        TermKpi(
            "unaccounted_share",
            cfg.name,
            "1",
            terms,
            lambda v: (v["m"] - v["s"]) / v["m"] if v["m"] > 0 else None,
            w,
            ctx.coverage_min,
            detail=detail,
        ),
        TermKpi("unaccounted_kwh", cfg.name, "kWh", terms, lambda v: v["m"] - v["s"], w, ctx.coverage_min),
    ]
