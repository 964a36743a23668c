"""Point references of the kpi section: a device point by name or role, fuels, credits and production."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from agent.config.base import StrictModel, exactly_one, given
from agent.model import Role

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # no '.': KPI names in formulas are scope.kpi
Path = tuple[str | int, ...]
Issue = tuple[Path, str]
# A KPI declaration's own windows and coverage, each falling back to the kpi section's
OwnWindows = Annotated[
    list[str] | None,
    Field(description="Windows this KPI is computed in, e.g. [15m, 1h, day]; unset: the kpi section's windows"),
]
OwnCoverageMin = Annotated[
    float | None,
    Field(
        ge=0,
        le=1,
        description="Share of the window (0..1) that must have good data for a good value; unset: the kpi section's "
        "coverage_min",
    ),
]


_REF_RULES: list[dict[str, Any]] = [
    exactly_one("point", "role"),
    {"if": {"not": given("role")}, "then": given("kind")},
]


class PointRefConfig(StrictModel):
    """One point of one device, by point name or by role. ``kind`` says how it is read: ``counter`` (a cumulative
    total: deltas), ``rate`` (per hour, or per minute for m3/min: integrated over time) or ``level`` (an
    instantaneous value: time-weighted mean); it defaults from the role."""

    model_config = ConfigDict(json_schema_extra={"allOf": [*_REF_RULES]})  # _one_selector, for editors

    device: str = Field(description="Name of a device of this site")
    point: str | None = Field(None, description="A point of the device by name (give point or role, not both)")
    role: Role | None = Field(
        None, description="A point of the device by its role, e.g. energy_import_kwh (see energy-agent list roles)"
    )
    kind: Literal["counter", "rate", "level"] | None = Field(
        None,
        description="counter (a running total: its increases count), rate (per hour: integrated over time) or level "
        "(time-weighted mean); unset: from the role",
    )
    scale: float = Field(1.0, description="Multiplies the value into the KPI's unit, e.g. 1000 for a MWh counter")
    max_rate_per_h: float | None = Field(
        None, gt=0, description="Counters: the largest plausible increase per hour; larger jumps are not counted"
    )
    counter_bits: Literal[16, 32, 64] | None = Field(
        None, description="Counters: register width where the counter wraps; defaults from the profile's data type"
    )

    @model_validator(mode="after")
    def _one_selector(self) -> PointRefConfig:
        if (self.point is None) == (self.role is None):
            raise ValueError("give either point (a point name of the device's profile) or role, not both")
        if self.kind is None and self.role is None:
            raise ValueError("a point given by name needs kind: counter, rate or level")
        return self

    @property
    def resolved_kind(self) -> str:
        if self.kind is not None:
            return self.kind
        assert self.role is not None
        if self.role.is_counter:
            return "counter"
        return "rate" if self.role in RATE_ROLES else "level"


RATE_ROLES: frozenset[Role] = frozenset(
    {
        Role.ACTIVE_POWER_KW,
        Role.REACTIVE_POWER_KVAR,
        Role.APPARENT_POWER_KVA,
        Role.PRODUCTION_RATE_TPH,
        Role.COAL_FEED_TPH,
        Role.GAS_FLOW_M3H,
        Role.STEAM_FLOW_TPH,
        Role.WATER_FLOW_M3H,
        Role.AIR_FLOW_M3MIN,
        Role.FLOW_M3H,
        Role.SHAFT_POWER_KW,
    }
)


_RATE_ROLE_NAMES: list[Any] = sorted(r.value for r in RATE_ROLES)  # list[Any]: a JSON Schema list
_ENTHALPY_ONLY = ("pressure", "temperature", "return_temperature", "return_temperature_c")


class LhvPeriodConfig(StrictModel):
    """A coefficient a fuel had before a change: the months before ``until`` are valued with it."""

    until: str = Field(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="First month (YYYY-MM) of the next value: earlier months use this",
    )
    lhv_gj_per_unit: float = Field(gt=0, description="The low heating value those months had, GJ per unit")


class FuelConfig(PointRefConfig):
    """A fuel or energy carrier input. ``carrier`` is a key of the factor table (raw_coal, natural_gas, heat, ...);
    a measured low heating value overrides the carrier's reference coefficient, for kgce and CO2 alike. A closed
    month keeps the coefficient it was computed with: earlier values go in ``lhv_history``; an undeclared change
    applies from the month the agent restarts with it (logged), unless ``kpi.restate_closed_periods``. Purchased
    steam at the table's coefficient includes the supplier's boiler losses (said in the KPIs' reference).

    The enthalpy method (``method: enthalpy``, purchased steam or hot water, carriers valued at the heat factor):
    the point is the mass flow in t/h, and the energy received is flow x (h(p, T) - h(return)) integrated over time,
    enthalpies by IAPWS-IF97 at the measured pressure (``pressure``, default: the device's steam_pressure_mpa,
    gauge unless ``pressure_absolute``) and temperature (``temperature``, default: steam_temperature_c); the return
    water is the measured condensate return (``return_temperature``) or a declared reference
    (``return_temperature_c``), taken at the steam's pressure. Steam carriers read at or below their saturation
    temperature are valued as dry saturated steam (h''). kgce and CO2 follow from the GJ; the line's energy and CO2
    KPIs state the basis in their reference. Default: ``method: coefficient``, unchanged."""

    model_config = ConfigDict(  # _retained_is_feedstock, for editors
        json_schema_extra={
            "allOf": [
                *_REF_RULES,
                {
                    "if": {"properties": {"method": {"const": "enthalpy"}}, "required": ["method"]},
                    "then": {
                        "allOf": [
                            exactly_one("return_temperature", "return_temperature_c"),
                            {"properties": {"lhv_gj_per_unit": {"type": "null"}, "lhv_history": {"maxItems": 0}}},
                            {
                                "anyOf": [
                                    {"properties": {"kind": {"const": "rate"}}, "required": ["kind"]},
                                    {
                                        "properties": {
                                            "kind": {"type": "null"},
                                            "role": {"enum": _RATE_ROLE_NAMES},
                                        },
                                        "required": ["role"],
                                    },
                                ]
                            },
                        ]
                    },
                    "else": {"properties": {k: {"type": "null"} for k in _ENTHALPY_ONLY}},
                },
            ]
        }
    )

    carrier: str = Field(description="Energy carrier in the factor table, e.g. raw_coal, natural_gas, diesel, heat")
    lhv_gj_per_unit: float | None = Field(None, gt=0, description="Measured low heating value, GJ per t or per m3")
    co2_fuel: str | None = Field(
        None, description="Fuel whose carbon content and oxidation give the CO2; defaults from the carrier"
    )
    feedstock: bool = Field(
        False, description="Used as raw material (原料用能): counted in kgce, left out of the park's controlled total"
    )
    lhv_history: list[LhvPeriodConfig] = Field(
        default_factory=list,
        description="Earlier values of lhv_gj_per_unit and the month each ended: closed months keep the coefficient "
        "they were computed with, a new one applies from its month (an undeclared change applies from the month of "
        "the restart, logged)",
    )
    carbon_retained_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Feedstock only: share (0..1) of its carbon that stays in the products (not emitted); unset: "
        "all of it is counted as combusted and the line's CO2 is marked an upper bound",
    )

    method: Literal["coefficient", "enthalpy"] = Field(
        "coefficient",
        description="coefficient (the quantity x lhv_gj_per_unit or the carrier's coefficient) or enthalpy (purchased "
        "steam or hot water: mass flow x (h(p, T) - h(return)) by IAPWS-IF97)",
    )
    pressure: PointRefConfig | None = Field(
        None, description="method: enthalpy: the steam's pressure in MPa; unset: the device's steam_pressure_mpa"
    )
    pressure_absolute: bool = Field(False, description="method: enthalpy: the pressure is absolute (default gauge)")
    temperature: PointRefConfig | None = Field(
        None, description="method: enthalpy: the steam's temperature in degC; unset: the device's steam_temperature_c"
    )
    return_temperature: PointRefConfig | None = Field(
        None, description="method: enthalpy: the measured condensate/return water temperature in degC"
    )
    return_temperature_c: float | None = Field(
        None,
        ge=0,
        le=200,
        description="method: enthalpy: the declared return/feedwater reference temperature in degC (when it is not "
        "measured)",
    )

    @model_validator(mode="after")
    def _retained_is_feedstock(self) -> FuelConfig:
        if self.carbon_retained_share is not None and not self.feedstock:
            raise ValueError("carbon_retained_share applies to a feedstock (feedstock: true) only")
        if self.method != "enthalpy":
            given_ = [k for k in _ENTHALPY_ONLY if getattr(self, k) is not None]
            if given_:
                raise ValueError(f"{', '.join(given_)} apply to method: enthalpy only")
            return self
        if (self.return_temperature is None) == (self.return_temperature_c is None):
            raise ValueError(
                "method: enthalpy needs the return water: give return_temperature (a measured point) or "
                "return_temperature_c (a declared reference), not both"
            )
        if self.lhv_gj_per_unit is not None or self.lhv_history:
            raise ValueError("method: enthalpy computes the energy from the enthalpies: drop lhv_gj_per_unit")
        if self.resolved_kind != "rate":
            raise ValueError(
                "method: enthalpy integrates mass flow x enthalpy rise: give the flow in t/h (e.g. role "
                "steam_flow_tph, or kind: rate), not a counter or a level"
            )
        return self

    def enthalpy_points(self) -> tuple[PointRefConfig, PointRefConfig, PointRefConfig | None]:
        """method: enthalpy: the pressure, temperature and (measured) return temperature points it reads."""
        p = self.pressure or PointRefConfig.model_validate({"device": self.device, "role": Role.STEAM_PRESSURE_MPA})
        t = self.temperature or PointRefConfig.model_validate({"device": self.device, "role": Role.STEAM_TEMPERATURE_C})
        return p, t, self.return_temperature


class CreditConfig(PointRefConfig):
    """Energy recovered and delivered out of the line (waste-heat power, exported coke-oven or converter gas, steam
    sold): subtracted from the line's energy. The amount is valued with ``carrier`` (its coefficient, or the measured
    ``lhv_gj_per_unit``) or an explicit ``kgce_per_unit``. ``co2`` says whether the credit also reduces the line's CO2:
    ``none`` (default: the energy credit only), ``grid`` (exported electricity at the grid factor), ``heat`` (exported
    heat or steam at the heat factor), ``fuel`` (exported fuel gas: the carbon leaves with it, at the carrier's fuel
    factor) or ``factor`` with ``co2_tco2_per_unit``."""

    model_config = ConfigDict(  # _valued, for editors
        json_schema_extra={
            "allOf": [
                *_REF_RULES,
                exactly_one("carrier", "kgce_per_unit"),
                {"not": {"allOf": [given("kgce_per_unit"), given("lhv_gj_per_unit")]}},
                {
                    "if": {"properties": {"co2": {"const": "factor"}}, "required": ["co2"]},
                    "then": given("co2_tco2_per_unit"),
                    "else": {"properties": {"co2_tco2_per_unit": {"type": "null"}}},
                },
                {"if": {"properties": {"co2": {"const": "fuel"}}, "required": ["co2"]}, "then": given("carrier")},
            ]
        }
    )

    carrier: str | None = Field(
        None, description="Energy carrier of the factor table that values the credit (give carrier or kgce_per_unit)"
    )
    kgce_per_unit: float | None = Field(None, gt=0, description="Explicit coefficient, kgce per unit of the point")
    lhv_gj_per_unit: float | None = Field(None, gt=0, description="Measured low heating value, GJ per unit")
    co2: Literal["none", "grid", "heat", "fuel", "factor"] = Field(
        "none",
        description="What the credit takes off the line's CO2: none, grid, heat, fuel, or factor (with "
        "co2_tco2_per_unit)",
    )
    co2_tco2_per_unit: float | None = Field(None, ge=0, description="With co2: factor, tCO2 per unit of the point")

    @model_validator(mode="after")
    def _valued(self) -> CreditConfig:
        if (self.carrier is None) == (self.kgce_per_unit is None):
            raise ValueError("a credit needs either carrier (valued with the factor table) or kgce_per_unit, not both")
        if self.kgce_per_unit is not None and self.lhv_gj_per_unit is not None:
            raise ValueError("give kgce_per_unit or lhv_gj_per_unit, not both")
        if (self.co2 == "factor") != (self.co2_tco2_per_unit is not None):
            raise ValueError("co2: factor goes with co2_tco2_per_unit, and co2_tco2_per_unit only with co2: factor")
        if self.co2 == "fuel" and self.carrier is None:
            raise ValueError("co2: fuel needs the credit's carrier (its fuel factor)")
        return self


class ProductionRefConfig(PointRefConfig):
    """A production point. ``equivalent_factor`` converts its tonnes into the reference product of the quota
    standard (折合/equivalent production, e.g. a conversion the standard defines per product grade)."""

    equivalent_factor: float = Field(1.0, gt=0, description="Tonnes of reference product per tonne of this product")
