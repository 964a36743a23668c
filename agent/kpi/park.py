"""Park totals over process lines, for energy and carbon dual control and the zero-carbon park indicator.

From the terms each line already has (``Context.lines``, filled by ``line_kpis``):

- ``energy_kgce``: comprehensive energy consumption, the lines' net kgce (credits subtracted);
- ``renewable_kgce``: the part that is electricity from meters of devices flagged ``renewable``, at the same
  coefficient as the rest of the electricity;
- ``feedstock_kgce``: the part that is fuel flagged ``feedstock`` (energy used as raw material, 原料用能);
- ``energy_controlled_kgce`` = energy - renewable - feedstock: the total counted for energy consumption control,
  since new renewable energy and feedstock energy are left out of it;
- ``co2_t``: the lines' CO2 (renewable electricity at the renewable factor, credits as configured);
- ``co2_t_per_tce``: CO2 per tonne of standard coal of the park's energy consumption (tCO2/tce), the zero-carbon
  park indicator; the denominator is ``energy_kgce`` (renewable electricity included, feedstock included).
  Whether the national zero-carbon park rules count feedstock energy in the denominator was not confirmed in the
  project's references: ``detail`` also gives the figure per tce of the controlled total;
- ``renewable_energy_share``: renewable kgce over total kgce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.config.kpi import ParkConfig
from agent.kpi.channels import Channel, Term
from agent.kpi.indicators import Context, TermKpi, ratio, total

Compute = Callable[[Mapping[str, float]], float | None]
INDICATOR_NOTE = (
    "tCO2 per tce of the park's comprehensive energy consumption (renewable electricity and feedstock included); "
    "definition of the zero-carbon park indicator not confirmed in the references (status UNCONF)"
)


def _sum(terms: list[Term]) -> Term:
    parts: list[tuple[Channel, float]] = []
    for t in terms:
        parts += t.parts
    history = next((t.history for t in terms if t.history is not None), None)  # the one of the engine's context
    return Term(parts, history=history)


def park_kpis(cfg: ParkConfig, ctx: Context) -> list[TermKpi]:
    """The park KPIs over ``cfg.lines`` (every line when not given); lines must be built first. A part the park does
    not have (no renewable meters, no feedstock) is 0 with the coverage of the energy total."""
    w = ctx.specs(cfg.windows)
    names = cfg.lines if cfg.lines is not None else list(ctx.lines)
    lines = [ctx.lines[n] for n in names if n in ctx.lines]
    for t in (x for line in lines for x in (line.kgce, line.co2, line.renewable_kgce, line.feedstock_kgce)):
        for ch in t.channels():
            for spec in w:
                ch.use_window(spec)
    energy = _sum([x.kgce for x in lines])
    renewable = _sum([x.renewable_kgce for x in lines])
    feedstock = _sum([x.feedstock_kgce for x in lines])
    controlled = Term(
        energy.parts + [(ch, -k) for ch, k in renewable.parts + feedstock.parts], history=ctx.fuel_history
    )
    co2 = _sum([x.co2 for x in lines])

    def kpi(name: str, unit: str, terms: dict[str, Term], fn: Compute, reference: str = "") -> TermKpi:
        return TermKpi(name, cfg.name, unit, terms, fn, w, ctx.coverage_min, reference=reference)

    def part(name: str, t: Term) -> TermKpi:
        if not t.parts:  # nothing of that kind in the park: 0, as covered as the total
            return kpi(name, "kgce", {"e": energy}, lambda v: 0.0)
        return kpi(name, "kgce", {"x": t}, total("x"))

    def per_tce(v: Mapping[str, float]) -> dict[str, float]:
        out = {"energy_tce": v["e"] / 1000.0}
        if v["k"] > 0:
            out["co2_t_per_controlled_tce"] = v["c"] / (v["k"] / 1000.0)
        return out

    indicator = kpi(
        "co2_t_per_tce", "tCO2/tce", {"c": co2, "e": energy, "k": controlled}, ratio("c", "e", 1000.0), INDICATOR_NOTE
    )
    indicator.detail = per_tce
    share = (
        kpi("renewable_energy_share", "1", {"r": renewable, "e": energy}, ratio("r", "e"))
        if renewable.parts
        else kpi("renewable_energy_share", "1", {"e": energy}, lambda v: 0.0)
    )
    return [
        kpi("energy_kgce", "kgce", {"e": energy}, total("e")),
        part("renewable_kgce", renewable),
        part("feedstock_kgce", feedstock),
        kpi("energy_controlled_kgce", "kgce", {"e": controlled}, total("e"), "energy less renewable and feedstock"),
        kpi("co2_t", "tCO2", {"c": co2}, total("c"), ctx.grid_reference),
        indicator,
        share,
    ]
