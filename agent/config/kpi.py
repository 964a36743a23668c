"""KPI section of the site file (``kpi:``). Owned by the KPI engine work (issue 4).

Example::

    kpi:
      windows: [15m, 1h, shift, day]
      shifts: ["00:00", "08:00", "16:00"]
      coverage_min: 0.9
      factors: {grid_year: 2023, grid_scope: inner_mongolia}
      lines:
        - name: kiln1
          indicator: cement_clinker
          production: [{device: kiln1, role: production_t}]
          electricity: [{device: kiln1-meter, role: energy_import_kwh}]
          fuels: [{device: kiln1, role: coal_t, carrier: raw_coal, lhv_gj_per_unit: 22.5}]
          corrections: {altitude_m: 1650}            # inputs of the level row's corrections
        - name: bof1
          indicator: converter
          production: [{device: bof1, role: production_t}]
          electricity: [{device: bof1-meter, role: energy_import_kwh}]
          credits:                                   # recovered / exported energy, subtracted
            - {device: bof1, role: gas_m3, carrier: converter_gas, co2: none}
            - {device: trt, role: energy_export_kwh, carrier: electricity, co2: grid}
      equipment:
        - {kind: boiler, name: b1, device: boiler1, steam_state: saturated, steam_dryness: 0.98,
           fuel: {device: boiler1, role: gas_m3, carrier: natural_gas}}
      demand: [{name: site, meters: [{device: main-meter, role: energy_import_kwh}], contracted_kw: 8000}]
      park: {name: park}                             # totals over the lines for dual control

``check(site, profiles)`` reports references to unknown devices, points, roles, KPIs and indicators with their
path in the site file; the config loader positions the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agent.config.base import StrictModel, exactly_one, given
from agent.model import Role

if TYPE_CHECKING:
    from agent.config.profile import ProfileConfig
    from agent.config.site import SiteConfig

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


class FuelConfig(PointRefConfig):
    """A fuel or energy carrier input. ``carrier`` is a key of the factor table (raw_coal, natural_gas, heat, ...);
    a measured low heating value overrides the carrier's reference coefficient, for kgce and CO2 alike."""

    carrier: str = Field(description="Energy carrier in the factor table, e.g. raw_coal, natural_gas, diesel, heat")
    lhv_gj_per_unit: float | None = Field(None, gt=0, description="Measured low heating value, GJ per t or per m3")
    co2_fuel: str | None = Field(
        None, description="Fuel whose carbon content and oxidation give the CO2; defaults from the carrier"
    )
    feedstock: bool = Field(
        False, description="Used as raw material (原料用能): counted in kgce, left out of the park's controlled total"
    )


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

    @model_validator(mode="after")
    def _order(self) -> LevelOverrideConfig:
        if self.benchmark > self.baseline:
            raise ValueError(f"benchmark {self.benchmark} must not be worse (higher) than baseline {self.baseline}")
        return self


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
    with R² below ``r2_min`` publishes no expected energy and no CUSUM and keeps training on the latest periods."""

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
    shorter_grades: Literal["indicative", "none"] = Field(
        "indicative", description="The line's other windows: a grade marked indicative, or no grade"
    )

    @field_validator("grade_windows")
    @classmethod
    def _grade_windows(cls, v: list[str]) -> list[str]:
        from agent.kpi.windows import check_window_name

        for name in v:
            if (why := check_window_name(name)) is not None:
                raise ValueError(why)
        return v


class _EquipmentBase(StrictModel):
    name: str = Field(
        pattern=NAME,
        description="Name of this equipment; its KPIs are published as <name>.<kpi>. Letters, digits, _ and -",
    )
    device: str = Field(description="The device whose points describe this equipment; unset references use its roles")
    windows: OwnWindows = None
    coverage_min: OwnCoverageMin = None


class _EfficiencyBand(StrictModel):
    efficiency_plausible: tuple[float, float] | None = Field(
        None, description="Efficiency outside [low, high] is uncertain; default per kind (see agent.kpi.equipment)"
    )

    @field_validator("efficiency_plausible")
    @classmethod
    def _band(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] < v[1] <= 2:
            raise ValueError("efficiency_plausible is [low, high] with 0 <= low < high <= 2")
        return v


class MotorConfig(_EquipmentBase, _EfficiencyBand):
    kind: Literal["motor"] = Field("motor", description="motor: load factor and efficiency of an electric motor")
    rated_power_kw: float = Field(gt=0, description="Rated (nameplate) shaft power, kW")
    rated_efficiency: float | None = Field(None, gt=0, le=1, description="Used for load when no shaft power")
    input_power: PointRefConfig | None = Field(
        None, description="Electric input power; default: role active_power_kw of the device"
    )
    shaft_power: PointRefConfig | None = Field(
        None, description="Shaft power; default: role shaft_power_kw if the device has it"
    )


class BoilerConfig(_EquipmentBase, _EfficiencyBand):
    """Direct-method efficiency: steam x (h_steam - h_feedwater) / (fuel x LHV). ``steam_state`` says which steam
    the boiler makes: ``superheated`` (enthalpy from pressure and temperature; a temperature at or below saturation
    makes the efficiency uncertain, never liquid enthalpy) or ``saturated`` (h' + x r from pressure alone, with the
    dryness x from ``steam_dryness``, e.g. the boiler's test report)."""

    model_config = ConfigDict(  # _dryness, for editors
        json_schema_extra={
            "if": {"properties": {"steam_state": {"const": "saturated"}}, "required": ["steam_state"]},
            "then": given("steam_dryness"),
            "else": {"properties": {"steam_dryness": {"type": "null"}}},
        }
    )

    kind: Literal["boiler"] = Field("boiler", description="boiler: direct-method efficiency and steam produced")
    steam_state: Literal["superheated", "saturated"] = Field(
        "superheated",
        description="superheated (enthalpy from pressure and temperature) or saturated (needs steam_dryness)",
    )
    steam_dryness: float | None = Field(None, ge=0.5, le=1.0, description="Saturated steam: dryness fraction x")
    fuel: FuelConfig = Field(description="The boiler's fuel input")
    steam: PointRefConfig | None = Field(
        None, description="Steam flow, t/h; default: role steam_flow_tph of the device"
    )
    pressure: PointRefConfig | None = Field(
        None, description="Steam pressure, MPa (gauge unless pressure_absolute); default: role steam_pressure_mpa"
    )
    temperature: PointRefConfig | None = Field(
        None, description="Steam temperature, degC; default: role steam_temperature_c"
    )
    feedwater_temperature: PointRefConfig | None = Field(
        None, description="Feedwater temperature, degC; default: role feedwater_temperature_c"
    )
    pressure_absolute: bool = Field(False, description="true if the pressure point is absolute, not gauge")

    @model_validator(mode="after")
    def _dryness(self) -> BoilerConfig:
        if self.steam_state == "saturated" and self.steam_dryness is None:
            raise ValueError("steam_state saturated needs steam_dryness (the dryness x, e.g. 0.98 from a test report)")
        if self.steam_state == "superheated" and self.steam_dryness is not None:
            raise ValueError("steam_dryness applies to steam_state: saturated only")
        return self


class CompressorConfig(_EquipmentBase):
    kind: Literal["compressor"] = Field("compressor", description="compressor: specific power, kW per m3/min of air")
    input_power: PointRefConfig | None = Field(
        None, description="Electric input power; default: role active_power_kw of the device"
    )
    air_flow: PointRefConfig | None = Field(
        None, description="Delivered air flow, m3/min; default: role air_flow_m3min"
    )


class PumpConfig(_EquipmentBase, _EfficiencyBand):
    """Unit (pump or fan + motor) efficiency, hydraulic power over electric input: pump rho g Q H / P, fan Q dp / P
    (``pressure`` is the total pressure rise in MPa). The KPI is ``unit_efficiency``: with electric input power it is
    not the pump's own (shaft) efficiency."""

    kind: Literal["pump", "fan"] = Field(
        "pump", description="pump or fan: unit efficiency, hydraulic power over electric input"
    )
    input_power: PointRefConfig | None = Field(
        None, description="Electric input power; default: role active_power_kw of the device"
    )
    flow: PointRefConfig | None = Field(None, description="Flow, m3/h; default: role flow_m3h of the device")
    head: PointRefConfig | None = Field(None, description="Pumps: head, m; default: role head_m of the device")
    pressure: PointRefConfig | None = Field(
        None, description="Fans: total pressure rise, MPa; default: role discharge_pressure_mpa of the device"
    )
    density_kg_m3: float = Field(1000.0, gt=0, description="Density of the pumped fluid, kg/m3 (water 1000)")


class TransformerConfig(_EquipmentBase):
    kind: Literal["transformer"] = Field("transformer", description="transformer: load factor, losses and efficiency")
    rated_kva: float = Field(gt=0, description="Rated apparent power, kVA")
    no_load_loss_kw: float = Field(ge=0, description="No-load (iron) loss from the test report, kW")
    load_loss_kw: float = Field(ge=0, description="Load (short-circuit) loss at rated load")
    apparent_power: PointRefConfig | None = Field(
        None, description="Apparent power, kVA; default: role apparent_power_kva of the device"
    )
    active_power: PointRefConfig | None = Field(
        None, description="Active power, kW; default: role active_power_kw of the device"
    )


class KilnConfig(_EquipmentBase):
    """Kiln heat consumption in kJ/kg clinker: fuel heat over clinker produced."""

    kind: Literal["kiln"] = Field("kiln", description="kiln: heat consumption per kg of clinker")
    fuels: list[FuelConfig] = Field(min_length=1, description="The kiln's fuels (at least one)")
    production: PointRefConfig | None = Field(
        None, description="Clinker production, t; default: role production_t of the device"
    )


EquipmentConfig = Annotated[
    MotorConfig | BoilerConfig | CompressorConfig | PumpConfig | TransformerConfig | KilnConfig,
    Field(discriminator="kind", json_schema_extra={"required": ["kind"]}),  # the tag picks the variant: say it
]


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
        from agent.kpi.formula import parse

        parse(v)
        return v


class FactorsConfig(StrictModel):
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
        from agent.kpi.windows import parse_hhmm

        minutes = [parse_hhmm(s) for s in v]
        if not minutes or len(set(minutes)) != len(minutes):
            raise ValueError("shifts needs at least one start time, each once")
        return v


LINE_KPIS = (
    "production",
    "electricity_kwh",
    "energy_kgce",
    "energy_gross_kgce",
    "credit_kgce",
    "sec_kwh_per_t",
    "energy_kgce_per_t",
    "co2_t",
    "co2_t_per_t",
    "water_m3_per_t",
    "waste_heat_gj",
    "waste_heat_share",
    "heat_kj_per_kg",
    "baseline_expected",
    "baseline_actual",
    "baseline_cusum",
)
EQUIPMENT_KPIS: dict[str, tuple[str, ...]] = {
    "motor": ("load_factor", "efficiency"),
    "boiler": ("efficiency", "steam_t"),
    "compressor": ("specific_power_kw_per_m3min",),
    "pump": ("unit_efficiency",),
    "fan": ("unit_efficiency",),
    "transformer": ("load_factor", "losses_kwh", "efficiency"),
    "kiln": ("heat_kj_per_kg",),
}

PARK_KPIS = (
    "energy_kgce",
    "renewable_kgce",
    "feedstock_kgce",
    "energy_controlled_kgce",
    "co2_t",
    "co2_t_per_tce",
    "renewable_energy_share",
)
RENAMED_KPIS = {("pump", "efficiency"): "unit_efficiency", ("fan", "efficiency"): "unit_efficiency"}


def declared_kpis(section: KpiSectionConfig) -> dict[str, Path]:
    """Every KPI name (``scope.kpi``) the section can produce, with the path of its declaration."""
    out: dict[str, Path] = {}
    for i, line in enumerate(section.lines):
        for k in LINE_KPIS:
            out[f"{line.name}.{k}"] = ("kpi", "lines", i)
    for i, eq in enumerate(section.equipment):
        for k in EQUIPMENT_KPIS[eq.kind]:
            out[f"{eq.name}.{k}"] = ("kpi", "equipment", i)
    for i, d in enumerate(section.demand):
        out[f"{d.name}.max_demand_kw"] = ("kpi", "demand", i)
        out[f"{d.name}.max_demand_sliding_kw"] = ("kpi", "demand", i)
    for i, pf in enumerate(section.power_factor):
        out[f"{pf.name}.power_factor"] = ("kpi", "power_factor", i)
    for i, r in enumerate(section.renewable):
        out[f"{r.name}.renewable_share"] = ("kpi", "renewable", i)
    for i, b in enumerate(section.balance):
        out[f"{b.name}.unaccounted_share"] = ("kpi", "balance", i)
        out[f"{b.name}.unaccounted_kwh"] = ("kpi", "balance", i)
    if section.park is not None:
        for k in PARK_KPIS:
            out[f"{section.park.name}.{k}"] = ("kpi", "park")
    for i, c in enumerate(section.custom):
        out[f"{c.scope}.{c.name}"] = ("kpi", "custom", i)
    return out


def check(site: SiteConfig, profiles: Mapping[str, ProfileConfig]) -> list[Issue]:
    """Every reference of the kpi section that does not resolve, with its path in the site file, e.g.
    ``(("kpi", "lines", 0, "electricity", 1, "device"), "unknown device 'kiln-meter' (did you mean ...?)")``."""
    if site.kpi is None:
        return []
    from agent.kpi.check import check_section  # the checker needs the level and factor tables

    return check_section(site, site.kpi, profiles)
