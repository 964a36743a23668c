"""A site's own level rows (``kpi.levels``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.config.base import StrictModel


class LevelOverrideConfig(StrictModel):
    """A site's own level row: replaces the shipped row of the same indicator and edition, or adds one."""

    indicator: str = Field(
        pattern=r"^[a-z0-9_]{1,64}$",
        description="Indicator the row grades, e.g. cement_clinker; an existing one is replaced for this edition",
    )
    product: str = Field("", description="Product name for people, e.g. clinker")
    kpi: Literal["energy_kgce_per_t", "sec_kwh_per_t"] = Field(
        "energy_kgce_per_t",
        description="The graded KPI: energy_kgce_per_t (comprehensive energy) or sec_kwh_per_t (electricity)",
    )
    unit: str = Field("kgce/t", description="Unit of benchmark and baseline, e.g. kgce/t or kWh/t")
    benchmark: float = Field(description="Benchmark (advanced) level, in unit; at or below it grades benchmark")
    baseline: float = Field(description="Baseline (minimum) level, in unit; above it grades below baseline")
    edition: str = Field(description="Edition of the levels, e.g. '2024'")
    standard: str = Field(description="Document that sets the values, e.g. a provincial notice")
    source: str = Field("site", description="Where the row comes from, for the grade's reference")
    status: Literal["OK", "2nd", "UNCONF", "site"] = Field(
        "site", description="Verification status shown with the grade: OK, 2nd (second-hand), UNCONF or site"
    )
    feedstock: Literal["included", "excluded"] = Field(
        "included",
        description="Whether the indicator counts feedstock energy (fuels flagged feedstock: true): included, or "
        "excluded (the graded kgce/t leaves them out)",
    )
    requires: list[Literal["electricity", "fuel"]] | None = Field(
        None,
        description="Carriers the indicator needs before it grades a line; unset: fuel for kgce/t, electricity "
        "for kWh/t",
    )

    @model_validator(mode="after")
    def _order(self) -> LevelOverrideConfig:
        if self.benchmark > self.baseline:
            raise ValueError(f"benchmark {self.benchmark} must not be worse (higher) than baseline {self.baseline}")
        return self
