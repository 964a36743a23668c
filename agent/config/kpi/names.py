"""The KPI names each declaration of the kpi section produces."""

from __future__ import annotations

from agent.config.kpi.refs import Path
from agent.config.kpi.section import KpiSectionConfig

LINE_KPIS = (
    "production",
    "electricity_kwh",
    "energy_kgce",
    "energy_gross_kgce",
    "credit_kgce",
    "sec_kwh_per_t",
    "energy_kgce_per_t",
    "co2_t",
    "co2_t_per_t",
    "co2_process_t",
    "co2_process_t_per_t",
    "co2_total_t",
    "co2_total_t_per_t",
    "water_m3_per_t",
    "waste_heat_gj",
    "waste_heat_share",
    "heat_kj_per_kg",
    "baseline_expected",
    "baseline_actual",
    "baseline_cusum",
)
EQUIPMENT_KPIS: dict[str, tuple[str, ...]] = {
    "motor": ("load_factor", "efficiency"),
    "boiler": ("efficiency", "steam_t"),
    "compressor": ("specific_power_kw_per_m3min",),
    "pump": ("unit_efficiency",),
    "fan": ("unit_efficiency",),
    "transformer": ("load_factor", "losses_kwh", "efficiency"),
    "kiln": ("heat_kj_per_kg",),
}

PARK_KPIS = (
    "energy_kgce",
    "renewable_kgce",
    "feedstock_kgce",
    "energy_controlled_kgce",
    "co2_t",
    "co2_t_per_tce",
    "renewable_energy_share",
)
RENAMED_KPIS = {("pump", "efficiency"): "unit_efficiency", ("fan", "efficiency"): "unit_efficiency"}


def declared_kpis(section: KpiSectionConfig) -> dict[str, Path]:
    """Every KPI name (``scope.kpi``) the section can produce, with the path of its declaration."""
    out: dict[str, Path] = {}
    for i, line in enumerate(section.lines):
        for k in LINE_KPIS:
            out[f"{line.name}.{k}"] = ("kpi", "lines", i)
    for i, eq in enumerate(section.equipment):
        for k in EQUIPMENT_KPIS[eq.kind]:
            out[f"{eq.name}.{k}"] = ("kpi", "equipment", i)
    for i, d in enumerate(section.demand):
        out[f"{d.name}.max_demand_kw"] = ("kpi", "demand", i)
        out[f"{d.name}.max_demand_sliding_kw"] = ("kpi", "demand", i)
    for i, pf in enumerate(section.power_factor):
        out[f"{pf.name}.power_factor"] = ("kpi", "power_factor", i)
    for i, r in enumerate(section.renewable):
        out[f"{r.name}.renewable_share"] = ("kpi", "renewable", i)
    for i, b in enumerate(section.balance):
        out[f"{b.name}.unaccounted_share"] = ("kpi", "balance", i)
        out[f"{b.name}.unaccounted_kwh"] = ("kpi", "balance", i)
    if section.park is not None:
        for k in PARK_KPIS:
            out[f"{section.park.name}.{k}"] = ("kpi", "park")
    for i, c in enumerate(section.custom):
        out[f"{c.scope}.{c.name}"] = ("kpi", "custom", i)
    return out
