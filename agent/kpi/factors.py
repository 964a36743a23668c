"""Standard-coal coefficients and CO2 factors from ``agent/data/energy_factors.yaml``, with the site's choices.

Every factor carries its status and source so a KPI can say what it was computed with. Choices a site makes
(``kpi.factors``): the electricity method (equivalent value 0.1229 kgce/kWh by default, or the equal-value method
with that year's published figure), the grid factor (data year and scope, or an explicit value), and per fuel a
measured low heating value, which overrides the reference coefficient.

One energy content per carrier: a carrier's NCV is its standard-coal coefficient in GJ (or the measured low heating
value), and both its kgce and its CO2 are computed from that NCV. CO2 is direct (combustion: NCV x carbon content x
oxidation x 44/12, carbon content and oxidation from the fuels table), indirect (purchased heat and steam: GJ x the
heat factor; electricity: the grid factor) or none, with the reason in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

KJ_PER_KGCE_DEFAULT = 29307.6


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    unit: str
    kgce_per_unit: float
    status: str
    source: str
    note: str
    co2_fuel: str | None
    co2_indirect: str | None = None  # "heat" or "grid"
    co2_none: str = ""  # why the carrier has no CO2 factor


@dataclass(frozen=True, slots=True)
class GridFactor:
    year: int
    scope: str
    tco2_per_mwh: float
    status: str
    source: str
    document: str


@dataclass(frozen=True, slots=True)
class Fuel:
    name: str
    unit: str
    ncv_gj: float
    cc_tc_per_gj: float
    oxidation: float
    status: str
    source: str

    def tco2_per_unit(self, ncv_gj: float | None = None) -> float:
        """EF = NCV x CC x OF x 44/12; a measured NCV (GJ per unit) replaces the default."""
        return (self.ncv_gj if ncv_gj is None else ncv_gj) * self.cc_tc_per_gj * self.oxidation * 44.0 / 12.0


@dataclass(frozen=True, slots=True)
class FactorTable:
    kj_per_kgce: float
    carriers: dict[str, Carrier]
    grid: tuple[GridFactor, ...]
    fuels: dict[str, Fuel]
    heat_tco2_per_gj: float

    def grid_factor(self, year: int, scope: str) -> GridFactor | None:
        for g in self.grid:
            if g.year == year and g.scope == scope:
                return g
        return None

    def kgce_per_gj(self) -> float:
        return 1e6 / self.kj_per_kgce

    def ncv_gj(self, carrier: str) -> float:
        """The declared energy content (GJ per unit) of a carrier: its standard-coal coefficient in GJ (1 for a
        carrier metered in GJ, whose coefficient 34.12 is the rounded 1e6 / 29307.6)."""
        c = self.carriers[carrier]
        return 1.0 if c.unit == "GJ" else c.kgce_per_unit / self.kgce_per_gj()


def load_data_yaml(name: str) -> Any:
    text = resources.files("agent.data").joinpath(name).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


@cache
def load_factors() -> FactorTable:
    """The shipped factor table (read once)."""
    raw = load_data_yaml("energy_factors.yaml")
    kj_per_kgce = float(raw.get("standard_coal_kj_per_kgce", KJ_PER_KGCE_DEFAULT))
    carriers = {
        k: Carrier(
            k,
            v["unit"],
            float(v["kgce_per_unit"]) if "kgce_per_unit" in v else float(v["ncv_gj"]) * 1e6 / kj_per_kgce,
            v["status"],
            str(v["source"]),
            v.get("note", ""),
            v.get("co2_fuel"),
            v.get("co2_indirect"),
            v.get("co2_none", ""),
        )
        for k, v in raw["carriers"].items()
    }
    grid = tuple(
        GridFactor(int(g["year"]), g["scope"], float(g["value"]), g["status"], str(g["source"]), g["document"])
        for g in raw["grid_factors"]
    )
    fuels = {
        k: Fuel(
            k,
            v["unit"],
            float(v["ncv_gj"]),
            float(v["cc_tc_per_gj"]),
            float(v["oxidation"]),
            v["status"],
            str(v["source"]),
        )
        for k, v in raw["fuels"].items()
    }
    return FactorTable(
        kj_per_kgce=kj_per_kgce,
        carriers=carriers,
        grid=grid,
        fuels=fuels,
        heat_tco2_per_gj=float(raw["heat_tco2_per_gj"]["value"]),
    )
