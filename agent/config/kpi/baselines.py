"""ISO 50006 energy baselines of a line (``kpi.lines[].baseline``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from agent.config.base import StrictModel, given
from agent.config.kpi.refs import PointRefConfig


class BaselineVariableConfig(StrictModel):
    """A relevant variable of an energy baseline: the line's production, or a point's mean or total."""

    model_config = ConfigDict(  # _one, for editors
        json_schema_extra={
            "if": {"required": ["production"], "properties": {"production": {"const": True}}},
            "then": {"properties": {"point": {"type": "null"}}},
            "else": given("point"),
        }
    )

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Name of the variable, used in coefficients. Lower case letters, digits, _",
    )
    production: bool = Field(False, description="true: the variable is the line's production in the period")
    point: PointRefConfig | None = Field(
        None, description="A point whose total or mean in the period is the variable (instead of production)"
    )

    @model_validator(mode="after")
    def _one(self) -> BaselineVariableConfig:
        if self.production == (self.point is not None):
            raise ValueError("give production: true or a point, not both")
        return self


class BaselineConfig(StrictModel):
    """ISO 50006 style energy baseline: energy = intercept + sum(coef x variable) per period, CUSUM of actual minus
    expected. Without ``coefficients`` the model is fitted (least squares) on the first ``training_periods``; a fit
    with R² below ``r2_min`` publishes no expected energy and no CUSUM and keeps training on the latest periods. The
    CUSUM runs over the periods after the training: the period that completes the fit is not part of it."""

    period: str = Field("1h", description="Window of one baseline period, e.g. 1h, shift, day")
    energy: Literal["electricity_kwh", "energy_kgce"] = Field(
        "electricity_kwh", description="Energy the baseline predicts: electricity_kwh or energy_kgce"
    )
    variables: list[BaselineVariableConfig] = Field(
        min_length=1, description="Relevant variables the energy depends on (at least one)"
    )
    coefficients: dict[str, float] | None = Field(None, description="intercept and one entry per variable")
    training_periods: int = Field(
        24, ge=3, le=10000, description="Periods used to fit the model when no coefficients are given"
    )
    r2_min: float = Field(0.75, ge=0, le=1, description="A fitted model below this R² publishes no CUSUM")
