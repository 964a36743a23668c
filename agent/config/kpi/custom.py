"""KPIs written as formulas (``kpi.custom``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from agent.config.base import StrictModel
from agent.config.kpi.formula import parse
from agent.config.kpi.refs import NAME, OwnCoverageMin, OwnWindows


class CustomKpiConfig(StrictModel):
    """A KPI written as a formula of points and other KPIs (see agent.kpi.formula for the syntax)."""

    name: str = Field(pattern=NAME, description="Name of the KPI; it is published as <scope>.<name>")
    scope: str = Field("site", pattern=NAME, description="First part of the KPI's name, e.g. a line name; default site")
    formula: str = Field(description="Formula of points and other KPIs, e.g. kiln1.energy_kgce / kiln1.production")
    unit: str = Field("", description="Unit of the result, shown with the value")
    windows: OwnWindows = None
    coverage_min: OwnCoverageMin = None

    @field_validator("formula")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse(v)
        return v
