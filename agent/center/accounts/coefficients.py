"""Coefficients of a unit's account: standard coal (both electricity methods), CO2, levels; a JSON snapshot of them.

The values are the agent's own tables, ``agent/data/energy_factors.yaml`` and ``energy_levels.yaml`` (one copy of
every figure, with its status and source). They are read here from the data files rather than through
``agent.kpi.factors`` because the centre may import only model, errors, config and wire (issue 16 layering); the
arithmetic is the one documented in those files: a carrier's NCV (GJ/unit) is its kgce coefficient / 34.12 or the
measured low heating value, kgce = NCV x 34.12, combustion CO2 = NCV x carbon content x oxidation x 44/12, purchased
heat/steam CO2 = GJ x heat factor, electricity = the grid factor (renewable: 0).

A closed period stores its :class:`Coefficients` as JSON and is never recomputed with newer ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agent.center.accounts.config import CarrierConfig, UnitConfig
from agent.center.accounts.tables import data_file, kj_per_kgce


@dataclass(frozen=True, slots=True)
class CarrierCoefficient:
    carrier: str
    unit: str
    kgce_per_unit: float  # equivalent value (当量值); for electricity 0.1229
    kgce_per_unit_equal: float | None  # equal-value method (等价值): electricity only, when declared
    tco2_per_unit: float
    source: str  # where the coefficient came from (reference row, config lhv, laboratory entry)


@dataclass(frozen=True, slots=True)
class Level:
    indicator: str
    product: str
    kpi: str
    unit: str
    benchmark: float
    baseline: float
    edition: str
    standard: str
    status: str


@dataclass(frozen=True, slots=True)
class Coefficients:
    carriers: dict[str, CarrierCoefficient]
    levels: dict[str, Level]  # product name -> level row
    grid: str  # the grid factor's description

    def to_json(self) -> dict[str, Any]:
        return {
            "carriers": {k: asdict(v) for k, v in self.carriers.items()},
            "levels": {k: asdict(v) for k, v in self.levels.items()},
            "grid": self.grid,
        }

    @staticmethod
    def from_json(raw: dict[str, Any]) -> Coefficients:
        return Coefficients(
            {k: CarrierCoefficient(**v) for k, v in raw["carriers"].items()},
            {k: Level(**v) for k, v in raw["levels"].items()},
            str(raw["grid"]),
        )


def _grid(unit: UnitConfig) -> tuple[float, str]:
    for g in data_file("energy_factors.yaml")["grid_factors"]:
        if int(g["year"]) == unit.grid.year and g["scope"] == unit.grid.scope:
            text = f"grid {g['scope']} {g['year']}: {g['value']} tCO2/MWh ({g['document']}, status {g['status']})"
            return float(g["value"]), text
    raise KeyError(f"no grid factor for {unit.grid.scope} {unit.grid.year}")


def carrier_coefficient(
    unit: UnitConfig, c: CarrierConfig, lhv_gj: float | None = None, lhv_source: str = ""
) -> CarrierCoefficient:
    """The carrier's coefficients; ``lhv_gj`` (a laboratory entry) wins over the config's and the reference."""
    raw = data_file("energy_factors.yaml")
    row = raw["carriers"][c.factor]
    kgce_per_gj = 1e6 / kj_per_kgce()
    ref_kgce = float(row["kgce_per_unit"]) if "kgce_per_unit" in row else float(row["ncv_gj"]) * kgce_per_gj
    ncv = 1.0 if row["unit"] == "GJ" else ref_kgce / kgce_per_gj
    source = f"{c.factor} reference {ref_kgce:g} kgce/{row['unit']} ({row['status']}, {row['source']})"
    if lhv_gj is not None:
        ncv, source = lhv_gj, lhv_source or f"laboratory LHV {lhv_gj:g} GJ/{row['unit']}"
    elif c.lhv_gj_per_unit is not None:
        ncv, source = c.lhv_gj_per_unit, f"declared LHV {c.lhv_gj_per_unit:g} GJ/{row['unit']}"
    kgce = ref_kgce if row["unit"] == "GJ" or (lhv_gj is None and c.lhv_gj_per_unit is None) else ncv * kgce_per_gj
    equal = None
    tco2 = 0.0
    if row.get("co2_indirect") == "grid":
        equal = unit.electricity_equal_value_kgce_per_kwh
        tco2 = 0.0 if c.renewable else _grid(unit)[0] / 1000.0
    elif row.get("co2_indirect") == "heat":
        tco2 = ncv * float(raw["heat_tco2_per_gj"]["value"])
    elif row.get("co2_fuel"):
        fuel = raw["fuels"][row["co2_fuel"]]
        tco2 = ncv * float(fuel["cc_tc_per_gj"]) * float(fuel["oxidation"]) * 44.0 / 12.0
    return CarrierCoefficient(c.name, str(row["unit"]), kgce, equal, tco2, source)


def level_for(indicator: str) -> Level | None:
    rows = [r for r in data_file("energy_levels.yaml")["levels"] if r["indicator"] == indicator]
    if not rows:
        return None
    r = max(rows, key=lambda r: str(r["edition"]))
    return Level(
        indicator,
        str(r["product"]),
        str(r["kpi"]),
        str(r["unit"]),
        float(r["benchmark"]),
        float(r["baseline"]),
        str(r["edition"]),
        str(r["standard"]),
        str(r["status"]),
    )


def coefficients(unit: UnitConfig, lhv: dict[str, tuple[float, str]] | None = None) -> Coefficients:
    """Today's coefficients of ``unit``; ``lhv`` maps carrier -> (measured GJ/unit, where it came from)."""
    lhv = lhv or {}
    carriers = {c.name: carrier_coefficient(unit, c, *lhv.get(c.name, (None, ""))) for c in unit.carriers}
    levels = {p.name: lv for p in unit.products if p.indicator and (lv := level_for(p.indicator)) is not None}
    return Coefficients(carriers, levels, _grid(unit)[1])


def grade(value: float, level: Level) -> str:
    """Lower is better: benchmark (标杆) at or below the benchmark, below_baseline above the baseline."""
    if value <= level.benchmark:
        return "benchmark"
    if value <= level.baseline:
        return "between"
    return "below_baseline"
