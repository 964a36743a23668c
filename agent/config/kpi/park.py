"""Site and park totals: renewable share (``kpi.renewable``), energy balances (``kpi.balance``), park totals
(``kpi.park``)."""

from __future__ import annotations

from pydantic import Field

from agent.config.base import StrictModel
from agent.config.kpi.refs import NAME, OwnWindows, PointRefConfig


class RenewableConfig(StrictModel):
    """Renewable share of electricity against the park target ladder. ``renewable`` defaults to the
    energy_import_kwh of every device flagged ``renewable: true``."""

    name: str = Field(
        "site",
        pattern=NAME,
        description="Name of this renewable share; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    total: list[PointRefConfig] = Field(min_length=1, description="Meters of the total electricity supply, kWh")
    renewable: list[PointRefConfig] | None = Field(
        None, description="Meters of renewable supply, kWh; default: energy_import_kwh of devices with renewable: true"
    )
    total_includes_renewable: bool = Field(
        True, description="false if the total meters measure grid supply only (renewable is then added)"
    )
    targets: list[float] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0],
        description="Target shares (0..1) of the park ladder, e.g. [0.5, 0.8, 1.0]",
    )
    windows: OwnWindows = None


class BalanceConfig(StrictModel):
    """Energy balance: a main meter against the sum of its sub-meters."""

    name: str = Field(
        pattern=NAME,
        description="Name of this balance; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    main: PointRefConfig = Field(description="The main (incoming) meter")
    subs: list[PointRefConfig] = Field(min_length=1, description="The sub-meters whose sum should match the main meter")
    max_unaccounted_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share (0..1) of the main meter's energy that may go unaccounted before it is flagged",
    )
    windows: OwnWindows = None


class ParkConfig(StrictModel):
    """Park totals over process lines: comprehensive energy, the part counted for energy dual control (renewable
    electricity and feedstock energy left out), CO2, and CO2 per tonne of standard coal."""

    name: str = Field(
        "park",
        pattern=NAME,
        description="Name of this park total; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    lines: list[str] | None = Field(None, description="Names of the lines the park totals cover; unset: every line")
    windows: OwnWindows = None
