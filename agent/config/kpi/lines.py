"""Process lines (``kpi.lines``): production, energy inputs, and what to grade them against."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.base import StrictModel
from agent.config.kpi.baselines import BaselineConfig
from agent.config.kpi.refs import (
    NAME,
    CreditConfig,
    FuelConfig,
    OwnCoverageMin,
    OwnWindows,
    PointRefConfig,
    ProductionRefConfig,
)
from agent.config.kpi.windows import check_window_name


class ProcessCo2Config(StrictModel):
    """CO2 from calcination (process emissions, not energy): CaO x 44.01/56.08 + MgO x 44.01/40.30 per t of
    product, the oxides coming from carbonates (the stoichiometry of GB/T 32151 Table C.2's carbonate factors).
    Without measured contents the defaults are declared in the KPI's reference: clinker CaO 65 %, lime CaO 95 %
    (IPCC 2006 default compositions; status UNCONF, measure them)."""

    kind: Literal["clinker", "lime"] = Field(description="clinker or lime: what the line calcines")
    cao_pct: float | None = Field(
        None, ge=0, le=100, description="CaO from carbonates in the product, %; unset: clinker 65, lime 95"
    )
    mgo_pct: float | None = Field(None, ge=0, le=100, description="MgO from carbonates in the product, %; unset: 0")


class LineConfig(StrictModel):
    """A process line: its production, its energy inputs, and what to grade it against."""

    name: str = Field(
        pattern=NAME, description="Name of this line; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -"
    )
    indicator: str | None = Field(None, description="Level table indicator, e.g. cement_clinker, ferrosilicon")
    level_edition: str | None = Field(None, description="Edition of the levels, e.g. '2023'; default the newest")
    production: list[ProductionRefConfig] = Field(
        min_length=1, description="Production points (at least one), counted in production_unit"
    )
    production_unit: str = Field("t", description="Unit of production, e.g. t or weight_box")
    electricity: list[PointRefConfig] = Field(default_factory=list, description="Electricity meters of the line, kWh")
    fuels: list[FuelConfig] = Field(default_factory=list, description="Fuel and other energy inputs of the line")
    water: list[PointRefConfig] = Field(default_factory=list, description="Water meters of the line, m3")
    waste_heat: list[PointRefConfig] = Field(
        default_factory=list, description="Recovered waste heat meters of the line, GJ"
    )
    credits: list[CreditConfig] = Field(default_factory=list, description="Energy delivered out, subtracted")
    corrections: dict[str, float] = Field(
        default_factory=dict,
        description="Inputs of the level row's corrections, e.g. altitude_m, ore_grade_pct (see energy_levels.yaml)",
    )
    windows: OwnWindows = None
    coverage_min: OwnCoverageMin = None
    baseline: BaselineConfig | None = Field(
        None, description="An energy baseline with CUSUM for this line (ISO 50006); unset: none"
    )
    grade_windows: list[str] = Field(
        default_factory=lambda: ["month", "year", "12mo"],
        description="Windows graded as such (the national levels are annual figures); the graded KPI is also "
        "computed in them. 12mo is the rolling 12 local calendar months",
    )
    process_co2: ProcessCo2Config | None = Field(
        None,
        description="Calcination CO2 of a clinker or lime line, published as co2_process_t beside the energy CO2 "
        "(co2_t) and their sum co2_total_t",
    )
    history_csv: str | None = Field(
        None,
        description="CSV of the line's past monthly totals (month, production, electricity_kwh, fuel carriers), "
        "relative to the site file: seeds the month, year and 12mo windows from day one (see agent.kpi.history); "
        "seeded months are marked on the wire",
    )
    no_fuel: bool = Field(
        False,
        description="true: the line burns no fuel (e.g. an all-electric furnace), so an indicator of comprehensive "
        "energy grades it on electricity alone; needs no_fuel_reason",
    )
    no_fuel_reason: str | None = Field(None, min_length=3, description="Why the line has no fuel, shown with grades")
    shorter_grades: Literal["indicative", "none"] = Field(
        "indicative", description="The line's other windows: a grade marked indicative, or no grade"
    )

    @model_validator(mode="after")
    def _no_fuel(self) -> LineConfig:
        if self.no_fuel and not self.no_fuel_reason:
            raise ValueError("no_fuel: true needs no_fuel_reason (why the line burns nothing, shown with its grades)")
        if self.no_fuel and self.fuels:
            raise ValueError("no_fuel: true contradicts the line's fuels: remove one")
        return self

    @field_validator("grade_windows")
    @classmethod
    def _grade_windows(cls, v: list[str]) -> list[str]:
        for name in v:
            if (why := check_window_name(name)) is not None:
                raise ValueError(why)
        return v
