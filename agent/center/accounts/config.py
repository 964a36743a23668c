"""The ``accounts`` section of center.yaml: declared energy-using units, their carriers, meters, products, receivers.

Optional: a centre without it starts as before. Example::

    accounts:
      state_dir: /var/lib/energy-center        # accounts.sqlite lives here (one file to back up)
      units:
        - name: cement-1
          title: "Example Cement Co., Ltd. 示例水泥有限公司"
          code: "91150000XXXXXXXXXX"              # the unit's code on the provincial platform
          timezone: Asia/Shanghai
          gateways: [{site: sim-cement, gateway: gw1}]
          electricity_equal_value_kgce_per_kwh: 0.2957   # that year's published figure (equal-value method)
          grid: {year: 2023, scope: inner_mongolia}
          carriers:
            - {name: electricity, code: "3300", factor: electricity}
            - {name: pv, code: "3310", factor: electricity, renewable: true}
            - {name: raw_coal, code: "0110", factor: raw_coal}
          meters:
            - {id: E-001, carrier: electricity, flow: purchased, device: main-meter, role: energy_import_kwh,
               accuracy_class: "0.5S", calibration_due: 2027-06-30, measures: "grid intake 110 kV"}
          products:
            - {name: clinker, indicator: cement_clinker, output: {device: kiln1, role: production_t}}
          receivers:
            - {name: province, url: "https://platform.example/api/upload", adapter: generic, ca_file: ca.crt,
               token_file: /etc/energy-center/province.token}

Carrier ``factor`` names a row of agent/data/energy_factors.yaml (its unit, standard-coal coefficient and CO2);
the carrier ``code`` is the unit's platform indicator code (GB/T 29870 lineage; province-specific, so declared here,
never invented). The adapter name is checked against the shipped adapters at ``validate``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.center.accounts.adapters import adapter_names
from agent.center.accounts.tables import factor_names, grid_choices, indicators

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class GatewayRef(_Strict):
    site: str = Field(pattern=_NAME)
    gateway: str = Field(pattern=_NAME)


class GridChoice(_Strict):
    year: int = Field(2023, description="Data year of the grid CO2 factor (energy_factors.yaml grid_factors)")
    scope: str = Field("national", description="national, north_china, inner_mongolia, ...")


class CarrierConfig(_Strict):
    name: str = Field(pattern=_NAME, description="The carrier's name in this unit's account")
    code: str = Field(min_length=1, max_length=32, description="The platform's indicator code for this carrier")
    factor: str = Field(description="Row of energy_factors.yaml carriers: unit, kgce coefficient, CO2")
    renewable: bool = Field(False, description="Renewable electricity: out of dual-control energy, 0 tCO2")
    feedstock: bool = Field(False, description="Used as feedstock (原料用能): out of dual-control energy")
    lhv_gj_per_unit: float | None = Field(
        None, gt=0, description="Measured low heating value; a laboratory entry for the month replaces it"
    )

    @field_validator("factor")
    @classmethod
    def _known_factor(cls, v: str) -> str:

        return _one_of(v, factor_names(), "a carrier of energy_factors.yaml")


RecordKind = Literal["15m", "day", "month"]
RECORD_KINDS: tuple[RecordKind, ...] = ("15m", "day", "month")
Flow = Literal["consumed", "purchased", "produced", "exported"]


class MeterConfig(_Strict):
    """One measuring instrument (GB 17167 register) and, when it is read by a gateway, its series."""

    id: str = Field(pattern=_NAME, description="Instrument number on the register")
    carrier: str = Field(description="Carrier it measures (a name under carriers)")
    flow: Flow = Field("consumed", description="What its quantity is in the account")
    site: str | None = Field(None, pattern=_NAME, description="Default: the unit's only gateway")
    gateway: str | None = Field(None, pattern=_NAME)
    device: str | None = Field(None, pattern=_NAME, description="Unset: a manual instrument (weighbridge, lab)")
    role: str = Field("energy_import_kwh", description="The counter role of the device's point (cumulative)")
    accuracy_class: str = Field(max_length=16, description="GB 17167 accuracy class, e.g. 0.5S, 1.0, III")
    calibration_due: dt.date = Field(description="Next calibration/verification due date")
    measures: str = Field("", max_length=200, description="What it measures, for the register")


class OutputRef(_Strict):
    site: str | None = Field(None, pattern=_NAME)
    gateway: str | None = Field(None, pattern=_NAME)
    device: str = Field(pattern=_NAME)
    role: str = "production_t"


class ProductConfig(_Strict):
    name: str = Field(pattern=_NAME)
    unit: str = Field("t", max_length=16)
    indicator: str | None = Field(None, description="Row of energy_levels.yaml for benchmark/baseline and grade")

    @field_validator("indicator")
    @classmethod
    def _known_indicator(cls, v: str | None) -> str | None:

        return None if v is None else _one_of(v, indicators(), "an indicator of energy_levels.yaml")

    output: OutputRef | None = Field(None, description="Production counter; without it output comes from entries")
    meters: list[str] = Field(
        default_factory=list,
        description="Meters whose energy is this product's (exported ones subtract); empty: the whole unit's",
    )


class ReceiverConfig(_Strict):
    name: str = Field(pattern=_NAME)
    url: str = Field(pattern=r"^https://", description="HTTPS only: the platform's upload endpoint")
    adapter: str = Field("generic", description="Wire format module (agent/center/accounts/adapters/)")
    ca_file: str | None = Field(None, description="CA bundle that signs the receiver (default: system CAs)")
    cert_file: str | None = Field(None, description="Client certificate (mutual TLS)")
    key_file: str | None = None
    token_file: str | None = Field(None, description="Bearer token file (never logged)")
    timeout_s: float = Field(20.0, gt=0)
    retry_initial_s: float = Field(30.0, gt=0)
    retry_max_s: float = Field(3600.0, gt=0)
    kinds: list[RecordKind] = Field(default_factory=lambda: list(RECORD_KINDS))

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, v: str) -> str:
        return _one_of(v, adapter_names(), "an upload adapter")


def _one_of(value: str, known: list[str], noun: str) -> str:
    if value not in known:
        near = difflib.get_close_matches(value, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"{value!r} is not {noun}; use one of {', '.join(known)}{hint}")
    return value


class UnitConfig(_Strict):
    name: str = Field(pattern=_NAME)
    title: str = Field("", max_length=200, description="Legal name for the report header")
    code: str = Field("", max_length=64, description="The unit's code on the provincial platform")
    timezone: str = "Asia/Shanghai"
    gateways: list[GatewayRef] = Field(min_length=1)
    electricity_equal_value_kgce_per_kwh: float | None = Field(
        None, gt=0, lt=1, description="That year's published supply coal consumption (等价值); unset: not shown"
    )
    grid: GridChoice = Field(default_factory=GridChoice)
    carriers: list[CarrierConfig] = Field(min_length=1)
    meters: list[MeterConfig] = Field(default_factory=list)
    products: list[ProductConfig] = Field(default_factory=list)
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    max_sample_gap_s: float = Field(
        300.0, gt=0, description="A longer silence between two counter readings is a gap in the quality section"
    )
    produce_from: dt.date | None = Field(
        None, description="First start only: produce upload records from this local date on (back-fill); default now"
    )
    completeness_min: float = Field(0.9, gt=0, le=1, description="Delivered/required below it: flagged")
    consistency_max: float = Field(0.05, gt=0, le=1, description="Daily sum vs monthly value deviation allowed")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as Asia/Shanghai") from None
        return v

    @model_validator(mode="after")
    def _grid_known(self) -> UnitConfig:

        if (self.grid.year, self.grid.scope) not in grid_choices():
            known = ", ".join(f"{s} {y}" for y, s in grid_choices())
            raise ValueError(f"grid: no factor for {self.grid.scope} {self.grid.year}; known: {known}")
        return self

    @model_validator(mode="after")
    def _references(self) -> UnitConfig:
        carriers = {c.name for c in self.carriers}
        meters = {m.id for m in self.meters}
        problems = []
        for kind, names in (("carrier", [c.name for c in self.carriers]), ("meter", [m.id for m in self.meters])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                problems.append(f"{kind} {', '.join(dup)} declared twice")
        for m in self.meters:
            if m.carrier not in carriers:
                problems.append(f"meter {m.id}: carrier {m.carrier!r} is not declared (carriers: {sorted(carriers)})")
            if m.device is not None and len(self.gateways) > 1 and m.gateway is None:
                problems.append(f"meter {m.id}: the unit has several gateways; say which (site, gateway)")
        for p in self.products:
            for mid in p.meters:
                if mid not in meters:
                    problems.append(f"product {p.name}: meter {mid!r} is not declared")
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            problems.append("receiver names must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def carrier(self, name: str) -> CarrierConfig:
        for c in self.carriers:
            if c.name == name:
                return c
        raise KeyError(name)


class AccountsConfig(_Strict):
    state_dir: str = Field(description="Folder of accounts.sqlite (the account, entries, register, outbox)")
    units: list[UnitConfig] = Field(min_length=1)
    settle_s: float = Field(30.0, ge=0, le=50, description="Wait after a period ends before closing it")
    keep_days: float = Field(400.0, ge=183, description="Sent records kept queryable at least this long")

    @model_validator(mode="after")
    def _unique(self) -> AccountsConfig:
        names = [u.name for u in self.units]
        if len(set(names)) != len(names):
            raise ValueError("unit names must be unique")
        return self

    def unit(self, name: str) -> UnitConfig:
        for u in self.units:
            if u.name == name:
                return u
        raise KeyError(f"no unit {name!r}; declared: {', '.join(u.name for u in self.units)}")
