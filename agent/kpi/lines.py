"""The KPIs of a process line: production, electricity, comprehensive energy, CO2, water, waste heat, graded
against the line's level row."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.config.kpi import LineConfig
from agent.kpi.benchmarks import corrected
from agent.kpi.channels import Channel, Term
from agent.kpi.indicators import Context, LineTerms, TermKpi, ratio, total


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
