"""The KPIs of a process line: production, electricity, comprehensive energy, CO2, water, waste heat, graded
against the line's level row."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.config.kpi import LineConfig
from agent.kpi.benchmarks import corrected, missing_carriers
from agent.kpi.carbon import ENERGY_CO2, co2_explain, fuel_tco2, process_kpis, steam_basis
from agent.kpi.channels import Channel, Term
from agent.kpi.indicators import Context, LineTerms, TermKpi, ratio, total
from agent.kpi.purchased import fuel_channel
from agent.kpi.windows import WindowSpec


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
    gross_parts += [(fuel_channel(ctx, f, w), ctx.fuel_kgce(f)) for f in line.fuels]
    credit = Term([(ctx.source.channel(c, w), ctx.fuel_kgce(c)) for c in line.credits])
    hist = ctx.fuel_history  # closed months keep their coefficients (agent.kpi.engine.KpiEngine.coefficients)
    for f in line.fuels:
        ctx.register_fuel(fuel_channel(ctx, f, w).key, f, f"line {line.name} fuel {f.carrier} ({f.device})")
    kgce = Term(gross_parts + [(ch, -k) for ch, k in credit.parts], history=hist)
    feedstock = Term([(fuel_channel(ctx, f, w), ctx.fuel_kgce(f)) for f in line.fuels if f.feedstock], history=hist)
    co2_parts: list[tuple[Channel, float]] = []
    for r in line.electricity:
        factor = ctx.renewable_tco2_per_mwh if r.device in ctx.renewable_devices else ctx.grid_tco2_per_mwh
        co2_parts.append((ctx.source.channel(r, w), factor / 1000.0))
    co2_parts += [(fuel_channel(ctx, f, w), fuel_tco2(f, ctx)) for f in line.fuels]
    co2_parts += [(ctx.source.channel(c, w), -ctx.credit_tco2(c)) for c in line.credits if c.co2 != "none"]
    co2 = Term(co2_parts, history=hist)
    ctx.lines[line.name] = LineTerms(
        kgce,
        co2,
        Term([(ctx.source.channel(r, w), ctx.electricity_kgce_per_kwh) for r in renewable]),
        feedstock,
    )
    level = ctx.level_for(line.indicator, line.level_edition)
    ungraded = ""
    if level is not None:
        level = corrected(level, line.corrections)
        ungraded = missing_carriers(level, bool(line.electricity), bool(line.fuels), line.no_fuel) or ""

    def kpi(
        name: str,
        unit: str,
        terms: dict[str, Term],
        fn: Callable[[Mapping[str, float]], float | None],
        graded: bool = True,
    ) -> TermKpi:
        row = level if graded and level is not None and level.kpi == name else None
        if row is not None and ungraded:
            return TermKpi(name, line.name, unit, terms, fn, w, cov, ungraded=ungraded, reference=row.reference())
        out = TermKpi(name, line.name, unit, terms, fn, w, cov, row, annual_coverage_min=ctx.annual_coverage_min)
        if row is not None and line.no_fuel:
            out.reference = f"no fuel: {line.no_fuel_reason}"  # after the row's reference
        return out

    out = [kpi("production", pu, {"p": prod}, total("p"))]
    if line.electricity:
        out += [
            kpi("electricity_kwh", "kWh", {"e": elec}, total("e")),
            kpi("sec_kwh_per_t", f"kWh/{pu}", {"e": elec, "p": prod}, ratio("e", "p")),
        ]
    if line.electricity or line.fuels:
        per_t = _per_t_on_basis(
            kpi("energy_kgce_per_t", f"kgce/{pu}", {"e": kgce, "p": prod}, ratio("e", "p")), feedstock
        )
        out += [
            kpi("energy_kgce", "kgce", {"e": kgce}, total("e")),
            per_t,
            kpi("co2_t", "tCO2", {"c": co2}, total("c")),
            kpi("co2_t_per_t", f"tCO2/{pu}", {"c": co2, "p": prod}, ratio("c", "p")),
        ]
        _label_electricity(out[-4:-2], line, ctx, w)
        uncounted = sorted({f.carrier for f in line.fuels if ctx.factors.carriers[f.carrier].co2_none})
        why = "; ".join(f"{c} counted at 0 tCO2: {ctx.factors.carriers[c].co2_none}" for c in uncounted)
        out[-2].reference = out[-1].reference = "; ".join(x for x in (ENERGY_CO2, ctx.grid_reference, why) if x)
        out[-2].explain = out[-1].explain = co2_explain(line)
        if basis := steam_basis(line, ctx):
            for k in out[-4:]:
                k.reference = "; ".join(x for x in (k.reference, basis) if x)
        out += process_kpis(line, ctx, prod, co2, kpi, pu)
        if line.credits:
            gross = Term(gross_parts, history=hist)
            out += [
                kpi("energy_gross_kgce", "kgce", {"e": gross}, total("e")),
                kpi("credit_kgce", "kgce", {"e": credit}, total("e")),
            ]
    if line.fuels:
        heat = Term([(fuel_channel(ctx, f, w), ctx.fuel_gj(f)) for f in line.fuels], history=hist)
        # GJ/t = 1000 kJ/kg
        out.append(kpi("heat_kj_per_kg", "kJ/kg", {"h": heat, "p": prod}, ratio("h", "p", 1000.0)))
    if line.water:
        out.append(kpi("water_m3_per_t", f"m3/{pu}", {"w": ctx.term(line.water, w), "p": prod}, ratio("w", "p")))
    if line.waste_heat:
        wh = ctx.term(line.waste_heat, w)
        gj_per_kgce = 1.0 / ctx.factors.kgce_per_gj()
        out.append(kpi("waste_heat_gj", "GJ", {"h": wh}, total("h")))
        if line.electricity or line.fuels:
            gross_in = Term(gross_parts, history=hist)
            out.append(kpi("waste_heat_share", "1", {"h": wh, "e": gross_in}, ratio("h", "e", 1.0 / gj_per_kgce)))
    return out


def _per_t_on_basis(k: TermKpi, feedstock: Term) -> TermKpi:
    """The graded kgce per unit on the level row's boundary: a row that excludes feedstock (coke, semi-coke: the
    coal charged is not consumed energy of the process) is graded on the energy net of the fuels flagged
    ``feedstock: true``; the feedstock's share is in ``detail``."""
    if not feedstock.parts:
        return k
    k.terms["f"] = feedstock

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        p = v["p"]
        return {"feedstock_kgce_per_t": v["f"] / p} if abs(p) > 1e-12 else {}

    k.detail = detail
    row = k.level
    if row is not None and row.feedstock == "excluded":
        k.compute = lambda v: (v["e"] - v["f"]) / v["p"] if abs(v["p"]) > 1e-12 else None
        k.reference = "; ".join(x for x in (k.reference, "feedstock excluded as the indicator defines it") if x)
    return k


def _label_electricity(kpis: list[TermKpi], line: LineConfig, ctx: Context, w: tuple[WindowSpec, ...]) -> None:
    """With the equal-value method, electricity in and out (consumption and exported credits alike) is valued at
    the year's supply coal figure; the same KPIs at the equivalent value (0.1229 kgce/kWh) are given beside it in
    ``detail``, each labelled in ``reference``."""
    if ctx.electricity_method != "equal_value" or not (
        line.electricity or any(c.carrier == "electricity" for c in line.credits)
    ):
        return
    eq = ctx.factors.carriers["electricity"].kgce_per_unit
    parts = [(ch, eq) for ch in ctx.term(line.electricity, w).channels()]
    parts += [(fuel_channel(ctx, f, w), ctx.fuel_kgce_equivalent(f)) for f in line.fuels]
    parts += [(ctx.source.channel(c, w), -ctx.fuel_kgce_equivalent(c)) for c in line.credits]
    equivalent = Term(parts, history=ctx.fuel_history)
    label = (
        f"electricity at its equal value {ctx.electricity_kgce_per_kwh:g} kgce/kWh, consumption and credits alike; "
        f"detail equivalent_*: at the equivalent value {eq:g} kgce/kWh"
    )
    total_kpi, per_t = kpis
    total_kpi.terms["q"] = equivalent
    total_kpi.detail = lambda v: {"equivalent_kgce": v["q"]}
    per_t.terms["q"] = equivalent
    previous = per_t.detail

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        out = previous(v) if previous is not None else {}
        if abs(v["p"]) > 1e-12:
            out["equivalent_kgce_per_t"] = v["q"] / v["p"]
        return out

    per_t.detail = detail
    for k in kpis:
        k.reference = f"{k.reference}; {label}" if k.reference else label
