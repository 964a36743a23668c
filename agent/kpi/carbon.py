"""The carbon KPIs of a process line beside its energy: what the energy CO2 (``co2_t``) counts and leaves out,
calcination CO2 (``co2_process_t``) of clinker and lime, and their sum (``co2_total_t``).

- Feedstock carbon (fuels flagged ``feedstock: true``) is not all combusted: the share a line declares retained in
  its products (``carbon_retained_share``) is deducted; without it the whole carbon is counted and the value's
  reason says it is an upper bound.
- A line whose credits (exported gas, power, steam) take off more CO2 than it emits, e.g. a BOF converter, has a
  negative net CO2: never without the reason saying so.
- Calcination: CaO x 44.01/56.08 + MgO x 44.01/40.30 tCO2 per t of product (agent.config.kpi.ProcessCo2Config).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.config.kpi import FuelConfig, LineConfig
from agent.kpi.channels import Term
from agent.kpi.indicators import Context, TermKpi, ratio, total
from agent.kpi.purchased import basis as enthalpy_basis

CO2_PER_CAO = 44.01 / 56.08  # t CO2 per t CaO from CaCO3 (0.440 tCO2/t CaCO3 x 100.09 / 56.08)
CO2_PER_MGO = 44.01 / 40.30  # t CO2 per t MgO from MgCO3
DEFAULT_CAO_PCT = {"clinker": 65.0, "lime": 95.0}  # IPCC 2006 default compositions (status UNCONF: measure them)
ENERGY_CO2 = "energy CO2: fuel combustion and purchased electricity and heat, net of credits"

Explain = Callable[[float | None, Mapping[str, float]], str | None]


def steam_basis(line: LineConfig, ctx: Context) -> str:
    """What a purchased steam coefficient stands for: the table's reference value (which includes the supplying
    boiler's losses, not the steam's enthalpy) or the declared enthalpy rise (the enthalpy method)."""
    said: list[str] = []
    for f in line.fuels:
        c = ctx.factors.carriers[f.carrier]
        if f.method == "enthalpy":
            said.append(enthalpy_basis(f))
            continue
        if not f.carrier.startswith("steam"):
            continue
        if f.lhv_gj_per_unit is None:
            gj = c.kgce_per_unit / ctx.factors.kgce_per_gj()
            said.append(
                f"{f.carrier} at its reference coefficient {c.kgce_per_unit:g} kgce/{c.unit} ({gj:.3f} GJ/{c.unit}, "
                f"status {c.status}): it includes the supplying boiler's losses, not the steam's enthalpy; with the "
                "steam's pressure and temperature measured, declare method: enthalpy (flow x (h(p, T) - "
                "h(return)), IAPWS-IF97) or lhv_gj_per_unit = h(p, T) - h(return water)"
            )
        else:
            said.append(
                f"{f.carrier} by its declared enthalpy rise {f.lhv_gj_per_unit:g} GJ/{c.unit} (enthalpy method)"
            )
    return "; ".join(said)


def fuel_tco2(f: FuelConfig, ctx: Context) -> float:
    """tCO2 per unit of a fuel as the line emits it: a feedstock's carbon retained in the products deducted."""
    full = ctx.fuel_tco2(f)
    if f.feedstock and f.carbon_retained_share is not None:
        return full * (1.0 - f.carbon_retained_share)
    return full


def co2_explain(line: LineConfig) -> Explain:
    """The reason a line's energy CO2 carries: an upper bound (feedstock carbon counted as combusted) and/or a
    negative net value (credits larger than the emissions)."""
    undeclared = sorted({f.carrier for f in line.fuels if f.feedstock and f.carbon_retained_share is None})
    bound = (
        f"upper bound: the carbon of feedstock {', '.join(undeclared)} is counted as combusted (declare the fuel's "
        "carbon_retained_share to deduct what stays in the products)"
        if undeclared
        else ""
    )
    credits = ", ".join(sorted({c.carrier or "credit" for c in line.credits if c.co2 != "none"}))

    def explain(value: float | None, _: Mapping[str, float]) -> str | None:
        notes = [bound] if bound else []
        if value is not None and value < 0:
            notes.append(f"negative: the CO2 of the energy delivered out ({credits}) exceeds the line's own emissions")
        return "; ".join(notes) or None

    return explain


def process_kpis(
    line: LineConfig, ctx: Context, prod: Term, co2: Term, kpi: Callable[..., TermKpi], unit: str
) -> list[TermKpi]:
    """co2_process_t and per t, and the total (energy + process) CO2, for a line declaring ``process_co2``."""
    cfg = line.process_co2
    if cfg is None:
        return []
    cao = cfg.cao_pct if cfg.cao_pct is not None else DEFAULT_CAO_PCT[cfg.kind]
    mgo = cfg.mgo_pct or 0.0
    factor = cao / 100.0 * CO2_PER_CAO + mgo / 100.0 * CO2_PER_MGO
    declared = "measured" if cfg.cao_pct is not None else "IPCC 2006 default composition, status UNCONF: measure it"
    reference = (
        f"process CO2 from calcination of {cfg.kind}: CaO {cao:g} % x 44.01/56.08 + MgO {mgo:g} % x 44.01/40.30 = "
        f"{factor:.4f} tCO2/t ({declared}); not energy CO2"
    )
    process = Term([(ch, w * factor) for ch, w in prod.parts])
    both = Term(co2.parts + process.parts, history=co2.history)
    out = [
        kpi("co2_process_t", "tCO2", {"c": process}, total("c")),
        kpi("co2_process_t_per_t", f"tCO2/{unit}", {"c": process, "p": prod}, ratio("c", "p")),
        kpi("co2_total_t", "tCO2", {"c": both}, total("c")),
        kpi("co2_total_t_per_t", f"tCO2/{unit}", {"c": both, "p": prod}, ratio("c", "p")),
    ]
    for k in out[:2]:
        k.reference = reference
    for k in out[2:]:
        k.reference = f"{ENERGY_CO2} (co2_t) + {reference}"
    return out
