"""Electricity of meter groups: maximum demand (``kpi.demand``) and power factor (``kpi.power_factor``)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from agent.config.base import StrictModel
from agent.config.kpi.refs import NAME, OwnWindows, PointRefConfig


class DemandConfig(StrictModel):
    """Maximum demand: the highest mean active power over ``block_min`` minutes, in fixed blocks and sliding."""

    name: str = Field(
        pattern=NAME,
        description="Name of this demand meter group; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    meters: list[PointRefConfig] = Field(
        min_length=1, description="Active energy or power points whose sum is the demand"
    )
    block_min: int = Field(
        15, ge=1, le=60, description="Demand interval in minutes, as the supply contract counts it (usually 15)"
    )
    sliding_step_min: int = Field(
        1, ge=1, le=60, description="Step of the sliding demand, minutes; must divide block_min"
    )
    contracted_kw: float | None = Field(
        None, gt=0, description="Contracted maximum demand, kW; a higher demand is flagged"
    )
    windows: list[str] = Field(
        default_factory=lambda: ["day", "month"],
        description="Periods the maximum is kept for: day, month, year (not 12mo)",
    )

    @field_validator("windows")
    @classmethod
    def _calendar_periods(cls, v: list[str]) -> list[str]:
        if "12mo" in v:
            raise ValueError("maximum demand is kept per period: use month or year, not the overlapping 12mo")
        return v

    @model_validator(mode="after")
    def _divides(self) -> DemandConfig:
        if self.block_min % self.sliding_step_min:
            raise ValueError("sliding_step_min must divide block_min")
        return self


class PowerFactorConfig(StrictModel):
    """Power factor over the window from active and reactive energy: kWh / sqrt(kWh^2 + kvarh^2). ``reactive`` are
    the import (lagging) kvarh counters; ``reactive_export`` the reverse (leading, over-compensation) kvarh, added to
    the reactive energy (kvarh = import + export) as supply companies bill it."""

    name: str = Field(
        pattern=NAME,
        description="Name of this power factor; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    active: list[PointRefConfig] = Field(min_length=1, description="Active energy counters, kWh")
    reactive: list[PointRefConfig] = Field(
        min_length=1, description="Reactive energy counters, import (lagging), kvarh"
    )
    reactive_export: list[PointRefConfig] = Field(
        default_factory=list,
        description="Reverse (leading) reactive energy counters, kvarh, added as supply companies bill it",
    )
    windows: OwnWindows = None
