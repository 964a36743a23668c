"""The ``kpi:`` section itself: windows, shifts, coverage, factors, and the lists of the other modules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.config.base import StrictModel
from agent.config.kpi.custom import CustomKpiConfig
from agent.config.kpi.demand import DemandConfig, PowerFactorConfig
from agent.config.kpi.equipment import EquipmentConfig
from agent.config.kpi.levels import LevelOverrideConfig
from agent.config.kpi.lines import LineConfig
from agent.config.kpi.park import BalanceConfig, ParkConfig, RenewableConfig
from agent.config.kpi.windows import parse_hhmm


class FactorsConfig(StrictModel):
    """Conversion and CO2 factors. The electricity method values every kWh of a line the same way, consumed or
    exported as a credit (never one method in and the other out)."""

    electricity_method: Literal["equivalent", "equal_value"] = Field(
        "equivalent",
        description="Electricity to kgce: equivalent (0.1229 kgce/kWh, the heat content) or equal_value (the supply "
        "coal of that year)",
    )
    electricity_equal_value_kgce_per_kwh: float | None = Field(
        None, gt=0, lt=1, description="That year's published supply coal consumption, needed for equal_value"
    )
    grid_year: int = Field(2023, description="Year of the grid CO2 factor in the factor table")
    grid_scope: str = Field("national", description="national, north_china, inner_mongolia, ... (factor table)")
    grid_tco2_per_mwh: float | None = Field(None, ge=0, description="Explicit grid factor; overrides year and scope")
    renewable_tco2_per_mwh: float = Field(0.0, ge=0, description="CO2 factor of renewable electricity, tCO2/MWh")

    @model_validator(mode="after")
    def _equal_value_needs_figure(self) -> FactorsConfig:
        if self.electricity_method == "equal_value" and self.electricity_equal_value_kgce_per_kwh is None:
            raise ValueError("electricity_method equal_value needs electricity_equal_value_kgce_per_kwh")
        return self


class KpiSectionConfig(StrictModel):
    """The ``kpi:`` section of the site file."""

    publish_interval_s: float = Field(
        60.0, gt=0, le=86400, description="How often KPI values are published, in seconds"
    )
    windows: list[str] = Field(
        default_factory=lambda: ["15m", "1h", "shift", "day"],
        min_length=1,
        description="Windows every KPI is computed in unless it names its own: 15m, 1h, 8h, shift, day, month, year, "
        "12mo",
    )
    shifts: list[str] = Field(
        default_factory=lambda: ["00:00", "08:00", "16:00"],
        description='Local start times of the shifts, HH:MM, e.g. ["00:00", "08:00", "16:00"]',
    )
    coverage_min: float = Field(
        0.9, ge=0, le=1, description="Share of a window (0..1) that must have good data for a good value"
    )
    annual_grade_coverage_min: float = Field(
        0.99,
        ge=0,
        le=1,
        description="Share of a year or 12mo window that must be covered for its grade (the national levels are "
        "annual figures); below it the value is published ungraded, the missing months named",
    )
    restate_closed_periods: bool = Field(
        False,
        description="true: a changed fuel coefficient revalues the months already closed (an explicit restatement, "
        "logged); false: closed months keep the coefficients they were computed with",
    )
    settle_s: float = Field(120.0, ge=0, description="How long after its end a window waits for late data")
    max_gap_s: float = Field(60.0, gt=0, description="Rates and levels: a longer gap is a gap, not bridged")
    counter_bridge_max_s: float = Field(3600.0, gt=0, description="Counters: longest delta counted as covered")
    emit_running: bool = Field(True, description="Also publish the running value of each open window")
    factors: FactorsConfig = Field(
        default_factory=lambda: FactorsConfig.model_validate({}),
        description="Conversion and CO2 factors: electricity method, grid factor",
    )
    lines: list[LineConfig] = Field(
        default_factory=list, description="Process lines: production, energy inputs, graded against the national levels"
    )
    equipment: list[EquipmentConfig] = Field(
        default_factory=list,
        description="Equipment KPIs: motors, boilers, compressors, pumps and fans, transformers, kilns",
    )
    demand: list[DemandConfig] = Field(default_factory=list, description="Maximum demand of meter groups")
    power_factor: list[PowerFactorConfig] = Field(
        default_factory=list, description="Power factor from active and reactive energy"
    )
    renewable: list[RenewableConfig] = Field(default_factory=list, description="Renewable share of electricity")
    balance: list[BalanceConfig] = Field(
        default_factory=list, description="Energy balances: a main meter against its sub-meters"
    )
    custom: list[CustomKpiConfig] = Field(default_factory=list, description="KPIs written as formulas")
    levels: list[LevelOverrideConfig] = Field(
        default_factory=list, description="The site's own level rows, replacing or adding to the shipped table"
    )
    park: ParkConfig | None = Field(None, description="Park totals over the lines (energy dual control); unset: none")

    @field_validator("shifts")
    @classmethod
    def _shift_times(cls, v: list[str]) -> list[str]:
        minutes = [parse_hhmm(s) for s in v]
        if not minutes or len(set(minutes)) != len(minutes):
            raise ValueError("shifts needs at least one start time, each once")
        return v
