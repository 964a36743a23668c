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


_REF_RULES: list[dict[str, Any]] = [
    exactly_one("point", "role"),
    {"if": {"not": given("role")}, "then": given("kind")},
]


class PointRefConfig(StrictModel):
    """One point of one device, by point name or by role. ``kind`` says how it is read: ``counter`` (a cumulative
    total: deltas), ``rate`` (per hour, or per minute for m3/min: integrated over time) or ``level`` (an
    instantaneous value: time-weighted mean); it defaults from the role."""

    model_config = ConfigDict(json_schema_extra={"allOf": [*_REF_RULES]})  # _one_selector, for editors

    device: str
    point: str | None = None
    role: Role | None = None
    kind: Literal["counter", "rate", "level"] | None = None
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

    carrier: str
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

    carrier: str | None = None
    kgce_per_unit: float | None = Field(None, gt=0, description="Explicit coefficient, kgce per unit of the point")
    lhv_gj_per_unit: float | None = Field(None, gt=0, description="Measured low heating value, GJ per unit")
    co2: Literal["none", "grid", "heat", "fuel", "factor"] = "none"
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

    indicator: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    product: str = ""
    kpi: Literal["energy_kgce_per_t", "sec_kwh_per_t"] = "energy_kgce_per_t"
    unit: str = "kgce/t"
    benchmark: float
    baseline: float
    edition: str
    standard: str = Field(description="Document that sets the values, e.g. a provincial notice")
    source: str = "site"
    status: Literal["OK", "2nd", "UNCONF", "site"] = "site"

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

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    production: bool = False
    point: PointRefConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> BaselineVariableConfig:
        if self.production == (self.point is not None):
            raise ValueError("give production: true or a point, not both")
        return self


class BaselineConfig(StrictModel):
    """ISO 50006 style energy baseline: energy = intercept + sum(coef x variable) per period, CUSUM of actual minus
    expected. Without ``coefficients`` the model is fitted (least squares) on the first ``training_periods``; a fit
    with R² below ``r2_min`` publishes no expected energy and no CUSUM and keeps training on the latest periods."""

    period: str = "1h"
    energy: Literal["electricity_kwh", "energy_kgce"] = "electricity_kwh"
    variables: list[BaselineVariableConfig] = Field(min_length=1)
    coefficients: dict[str, float] | None = Field(None, description="intercept and one entry per variable")
    training_periods: int = Field(24, ge=3, le=10000)
    r2_min: float = Field(0.75, ge=0, le=1, description="A fitted model below this R² publishes no CUSUM")


class LineConfig(StrictModel):
    """A process line: its production, its energy inputs, and what to grade it against."""

    name: str = Field(pattern=NAME)
    indicator: str | None = Field(None, description="Level table indicator, e.g. cement_clinker, ferrosilicon")
    level_edition: str | None = Field(None, description="Edition of the levels, e.g. '2023'; default the newest")
    production: list[ProductionRefConfig] = Field(min_length=1)
    production_unit: str = Field("t", description="Unit of production, e.g. t or weight_box")
    electricity: list[PointRefConfig] = Field(default_factory=list)
    fuels: list[FuelConfig] = Field(default_factory=list)
    water: list[PointRefConfig] = Field(default_factory=list)
    waste_heat: list[PointRefConfig] = Field(default_factory=list, description="Recovered heat, GJ")
    credits: list[CreditConfig] = Field(default_factory=list, description="Energy delivered out, subtracted")
    corrections: dict[str, float] = Field(
        default_factory=dict,
        description="Inputs of the level row's corrections, e.g. altitude_m, ore_grade_pct (see energy_levels.yaml)",
    )
    windows: list[str] | None = None
    coverage_min: float | None = Field(None, ge=0, le=1)
    baseline: BaselineConfig | None = None
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
    name: str = Field(pattern=NAME)
    device: str
    windows: list[str] | None = None
    coverage_min: float | None = Field(None, ge=0, le=1)


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
    kind: Literal["motor"] = "motor"
    rated_power_kw: float = Field(gt=0)
    rated_efficiency: float | None = Field(None, gt=0, le=1, description="Used for load when no shaft power")
    input_power: PointRefConfig | None = None  # default: role active_power_kw of the device
    shaft_power: PointRefConfig | None = None  # default: role shaft_power_kw if the device has it


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

    kind: Literal["boiler"] = "boiler"
    steam_state: Literal["superheated", "saturated"] = "superheated"
    steam_dryness: float | None = Field(None, ge=0.5, le=1.0, description="Saturated steam: dryness fraction x")
    fuel: FuelConfig
    steam: PointRefConfig | None = None  # default: role steam_flow_tph
    pressure: PointRefConfig | None = None  # default: role steam_pressure_mpa (gauge unless pressure_absolute)
    temperature: PointRefConfig | None = None  # default: role steam_temperature_c
    feedwater_temperature: PointRefConfig | None = None  # default: role feedwater_temperature_c
    pressure_absolute: bool = Field(False, description="true if the pressure point is absolute, not gauge")

    @model_validator(mode="after")
    def _dryness(self) -> BoilerConfig:
        if self.steam_state == "saturated" and self.steam_dryness is None:
            raise ValueError("steam_state saturated needs steam_dryness (the dryness x, e.g. 0.98 from a test report)")
        if self.steam_state == "superheated" and self.steam_dryness is not None:
            raise ValueError("steam_dryness applies to steam_state: saturated only")
        return self


class CompressorConfig(_EquipmentBase):
    kind: Literal["compressor"] = "compressor"
    input_power: PointRefConfig | None = None  # default: role active_power_kw
    air_flow: PointRefConfig | None = None  # default: role air_flow_m3min


class PumpConfig(_EquipmentBase, _EfficiencyBand):
    """Unit (pump or fan + motor) efficiency, hydraulic power over electric input: pump rho g Q H / P, fan Q dp / P
    (``pressure`` is the total pressure rise in MPa). The KPI is ``unit_efficiency``: with electric input power it is
    not the pump's own (shaft) efficiency."""

    kind: Literal["pump", "fan"] = "pump"
    input_power: PointRefConfig | None = None  # default: role active_power_kw
    flow: PointRefConfig | None = None  # default: role flow_m3h
    head: PointRefConfig | None = None  # pump, default role head_m
    pressure: PointRefConfig | None = None  # fan, default role discharge_pressure_mpa
    density_kg_m3: float = Field(1000.0, gt=0)


class TransformerConfig(_EquipmentBase):
    kind: Literal["transformer"] = "transformer"
    rated_kva: float = Field(gt=0)
    no_load_loss_kw: float = Field(ge=0)
    load_loss_kw: float = Field(ge=0, description="Load (short-circuit) loss at rated load")
    apparent_power: PointRefConfig | None = None  # default: role apparent_power_kva
    active_power: PointRefConfig | None = None  # default: role active_power_kw


class KilnConfig(_EquipmentBase):
    """Kiln heat consumption in kJ/kg clinker: fuel heat over clinker produced."""

    kind: Literal["kiln"] = "kiln"
    fuels: list[FuelConfig] = Field(min_length=1)
    production: PointRefConfig | None = None  # default: role production_t


EquipmentConfig = Annotated[
    MotorConfig | BoilerConfig | CompressorConfig | PumpConfig | TransformerConfig | KilnConfig,
    Field(discriminator="kind", json_schema_extra={"required": ["kind"]}),  # the tag picks the variant: say it
]


class DemandConfig(StrictModel):
    """Maximum demand: the highest mean active power over ``block_min`` minutes, in fixed blocks and sliding."""

    name: str = Field(pattern=NAME)
    meters: list[PointRefConfig] = Field(min_length=1)
    block_min: int = Field(15, ge=1, le=60)
    sliding_step_min: int = Field(1, ge=1, le=60)
    contracted_kw: float | None = Field(None, gt=0)
    windows: list[str] = Field(default_factory=lambda: ["day", "month"])

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

    name: str = Field(pattern=NAME)
    active: list[PointRefConfig] = Field(min_length=1)
    reactive: list[PointRefConfig] = Field(min_length=1)
    reactive_export: list[PointRefConfig] = Field(default_factory=list)
    windows: list[str] | None = None


class RenewableConfig(StrictModel):
    """Renewable share of electricity against the park target ladder. ``renewable`` defaults to the
    energy_import_kwh of every device flagged ``renewable: true``."""

    name: str = Field("site", pattern=NAME)
    total: list[PointRefConfig] = Field(min_length=1)
    renewable: list[PointRefConfig] | None = None
    total_includes_renewable: bool = Field(
        True, description="false if the total meters measure grid supply only (renewable is then added)"
    )
    targets: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])
    windows: list[str] | None = None


class BalanceConfig(StrictModel):
    """Energy balance: a main meter against the sum of its sub-meters."""

    name: str = Field(pattern=NAME)
    main: PointRefConfig
    subs: list[PointRefConfig] = Field(min_length=1)
    max_unaccounted_share: float = Field(0.05, ge=0, le=1)
    windows: list[str] | None = None


class ParkConfig(StrictModel):
    """Park totals over process lines: comprehensive energy, the part counted for energy dual control (renewable
    electricity and feedstock energy left out), CO2, and CO2 per tonne of standard coal."""

    name: str = Field("park", pattern=NAME)
    lines: list[str] | None = Field(None, description="Line names; default every line")
    windows: list[str] | None = None


class CustomKpiConfig(StrictModel):
    """A KPI written as a formula of points and other KPIs (see agent.kpi.formula for the syntax)."""

    name: str = Field(pattern=NAME)
    scope: str = Field("site", pattern=NAME)
    formula: str
    unit: str = ""
    windows: list[str] | None = None
    coverage_min: float | None = Field(None, ge=0, le=1)

    @field_validator("formula")
    @classmethod
    def _parses(cls, v: str) -> str:
        from agent.kpi.formula import parse

        parse(v)
        return v


class FactorsConfig(StrictModel):
    electricity_method: Literal["equivalent", "equal_value"] = "equivalent"
    electricity_equal_value_kgce_per_kwh: float | None = Field(
        None, gt=0, lt=1, description="That year's published supply coal consumption, needed for equal_value"
    )
    grid_year: int = 2023
    grid_scope: str = Field("national", description="national, north_china, inner_mongolia, ... (factor table)")
    grid_tco2_per_mwh: float | None = Field(None, ge=0, description="Explicit grid factor; overrides year and scope")
    renewable_tco2_per_mwh: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _equal_value_needs_figure(self) -> FactorsConfig:
        if self.electricity_method == "equal_value" and self.electricity_equal_value_kgce_per_kwh is None:
            raise ValueError("electricity_method equal_value needs electricity_equal_value_kgce_per_kwh")
        return self


class KpiSectionConfig(StrictModel):
    """The ``kpi:`` section of the site file."""

    publish_interval_s: float = Field(60.0, gt=0, le=86400)
    windows: list[str] = Field(default_factory=lambda: ["15m", "1h", "shift", "day"], min_length=1)
    shifts: list[str] = Field(default_factory=lambda: ["00:00", "08:00", "16:00"], description="Local start times")
    coverage_min: float = Field(0.9, ge=0, le=1)
    settle_s: float = Field(120.0, ge=0, description="How long after its end a window waits for late data")
    max_gap_s: float = Field(60.0, gt=0, description="Rates and levels: a longer gap is a gap, not bridged")
    counter_bridge_max_s: float = Field(3600.0, gt=0, description="Counters: longest delta counted as covered")
    emit_running: bool = Field(True, description="Also publish the running value of each open window")
    factors: FactorsConfig = Field(default_factory=lambda: FactorsConfig.model_validate({}))
    lines: list[LineConfig] = Field(default_factory=list)
    equipment: list[EquipmentConfig] = Field(default_factory=list)
    demand: list[DemandConfig] = Field(default_factory=list)
    power_factor: list[PowerFactorConfig] = Field(default_factory=list)
    renewable: list[RenewableConfig] = Field(default_factory=list)
    balance: list[BalanceConfig] = Field(default_factory=list)
    custom: list[CustomKpiConfig] = Field(default_factory=list)
    levels: list[LevelOverrideConfig] = Field(default_factory=list)
    park: ParkConfig | None = None

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
