"""Equipment KPIs (``kpi.equipment``): motors, boilers, compressors, pumps and fans, transformers, kilns."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agent.config.base import StrictModel, given
from agent.config.kpi.refs import NAME, FuelConfig, OwnCoverageMin, OwnWindows, PointRefConfig


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
    dryness x from ``steam_dryness``, e.g. the boiler's test report). A saturated boiler with a temperature point
    (``temperature``, or the device's steam_temperature_c) is checked: steam more than 10 K above saturation is
    superheated, and the efficiency is uncertain with that reason."""

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
