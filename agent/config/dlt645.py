"""DL/T 645 (2007 and 1997) configuration: the data identifier catalogue shipped as data, the profile model
(``protocol: dlt645`` files in ``device_profiles/``) and the site's device entry.

The catalogue (``agent/data/dlt645_2007.yaml``, ``dlt645_1997.yaml``) holds per data identifier (DI) its format,
unit, sign, which of the device's CT/PT ratios apply and the KPI role a profile would give it. A profile point
names a DI; format, unit and sign come from the catalogue unless the point gives its own (vendor DIs).

Formats (``parse_format``): ``X`` digits with at most one ``.`` (packed BCD, least significant byte first, implied
decimals), date/time fields (``YYMMDDhhmm``, ``YYMMDDWW``, ``hhmmss``, ``MMDDhhmm``), ``a,b`` for two fields in a
row (max demand and its time) and ``f*N`` for N repetitions (daily frozen energy: total and tariffs 1-4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from agent.config.base import StrictModel
from agent.config.profile import SourceDocument
from agent.model import Role

Version = Literal["2007", "1997"]
Ratio = Literal["ct_pt", "ct", "pt", "none"]
DATE_FIELDS = ("YYMMDDhhmmss", "YYMMDDhhmm", "YYMMDDWW", "MMDDhhmm", "hhmmss", "YYMMDD")
_NUMBER = re.compile(r"^X+(\.X+)?$")
_DI_2007 = re.compile(r"^[0-9A-Fa-f]{2}(-?[0-9A-Fa-f]{2}){3}$")
_DI_1997 = re.compile(r"^[0-9A-Fa-f]{2}-?[0-9A-Fa-f]{2}$")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEFAULT_TIMEOUT_MS = 1000.0


@dataclass(frozen=True, slots=True)
class Field_:
    """One field of a format: ``kind`` number (``digits``, ``decimals``) or date (``pattern``)."""

    kind: Literal["number", "date"]
    size: int  # bytes on the wire
    digits: int = 0
    decimals: int = 0
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class Format:
    text: str
    fields: tuple[Field_, ...]  # in wire order (after repetition)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)


def parse_format(text: str) -> Format:
    """``XXXXXX.XX``, ``XX.XXXX,YYMMDDhhmm``, ``XXXXXX.XX*5`` ...; ValueError naming what is wrong."""
    repeat = 1
    body = text
    if "*" in text:
        body, _, count = text.partition("*")
        if not count.isdigit() or not 1 <= int(count) <= 16:
            raise ValueError(f"format {text!r}: the repetition after '*' must be 1..16")
        repeat = int(count)
    fields: list[Field_] = []
    for part in body.split(","):
        if _NUMBER.match(part):
            digits = part.count("X")  # an odd count takes a leading zero nibble (1997 voltage XXX: 2 bytes)
            decimals = len(part.partition(".")[2])
            fields.append(Field_("number", (digits + 1) // 2, digits, decimals))
        elif part in DATE_FIELDS:
            fields.append(Field_("date", len(part) // 2, pattern=part))
        else:
            raise ValueError(
                f"format {text!r}: {part!r} is neither digits like XXXXXX.XX nor one of {', '.join(DATE_FIELDS)}"
            )
    return Format(text, tuple(fields * repeat))


def normalise_di(di: str, version: Version) -> str:
    """'00010000' or '00-01-00-00' -> '00-01-00-00' (2007); '9010' / '90-10' -> '9010' (1997)."""
    bare = di.replace("-", "").upper()
    if version == "2007":
        return "-".join(bare[i : i + 2] for i in range(0, 8, 2))
    return bare


def di_bytes(di: str, version: Version) -> bytes:
    """The identifier as sent: low byte first (DI0 first for 2007)."""
    return bytes.fromhex(di.replace("-", ""))[::-1]


class CatalogueItem(StrictModel):
    di: str
    name: str
    format: str
    unit: str = ""
    signed: bool = False
    ratio: Ratio = "none"
    role: Role | None = None
    description: str = ""


class Catalogue(StrictModel):
    version: Version
    items: list[CatalogueItem]

    def by_di(self) -> dict[str, CatalogueItem]:
        return {normalise_di(i.di, self.version): i for i in self.items}


@cache
def catalogue(version: Version) -> dict[str, CatalogueItem]:
    """The shipped catalogue of ``version`` by normalised DI."""
    text = resources.files("agent.data").joinpath(f"dlt645_{version}.yaml").read_text(encoding="utf-8")
    return Catalogue.model_validate(yaml.safe_load(text)).by_di()


class Dlt645PointConfig(StrictModel):
    """One data identifier read from the meter (one request each)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Point name, unique in the profile")
    di: str = Field(
        description="Data identifier as in the standard's tables: 2007 '00-01-00-00' (DI3-DI2-DI1-DI0), 1997 '9010'"
    )
    format: str | None = Field(
        None, description="Data format, e.g. XXXXXX.XX; unset: the catalogue's (energy-agent reference dlt645)"
    )
    unit: str | None = Field(None, description="Unit after ratios; unset: the catalogue's")
    signed: bool | None = Field(None, description="Top bit of the most significant byte is the sign; unset: catalogue")
    ratio: Ratio | None = Field(None, description="Which of the device's ct_ratio / pt_ratio apply; unset: catalogue")
    element: int = Field(0, ge=0, le=15, description="For repeated formats (f*N): which element, 0 = first")
    scale: float = Field(1.0, description="value = decoded * scale * ratio (e.g. 0.001 for kWh -> MWh)")
    range: tuple[float, float] | None = Field(
        None, description="Plausible [min, max] after scaling; values outside are flagged uncertain"
    )
    role: Role | None = Field(None, description="What the KPI engine uses this point for")
    description: str = Field("", description="Free text for people")


class Dlt645ProfileConfig(StrictModel):
    """A DL/T 645 meter profile: the data identifiers to read."""

    profile: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Profile name used by site files")
    protocol: Literal["dlt645"] = Field(description="dlt645: this profile lists DL/T 645 data identifiers")
    version: Version = Field(description="2007 (4-byte identifiers) or 1997 (2-byte identifiers)")
    description: str = Field("", description="What meter this profile is for")
    vendor: str = Field("", description="Manufacturer")
    model: str = Field("", description="Meter model or series")
    category: Literal["energy_meter", "transformer", "other"] = Field("energy_meter", description="Kind of device")
    source: SourceDocument | None = Field(None, description="Where the identifiers were taken from")
    points: list[Dlt645PointConfig] = Field(min_length=1, description="The data identifiers to read")

    @model_validator(mode="after")
    def _check_points(self) -> Dlt645ProfileConfig:
        known = catalogue(self.version)
        seen: set[str] = set()
        for i, p in enumerate(self.points):
            where = f"points[{i}] ({p.name})"
            if p.name in seen:
                raise ValueError(f"{where}: point name used twice")
            seen.add(p.name)
            pattern = _DI_2007 if self.version == "2007" else _DI_1997
            if not pattern.match(p.di):
                example = "'00-01-00-00'" if self.version == "2007" else "'9010'"
                raise ValueError(f"{where}: di {p.di!r} is not a {self.version} identifier like {example}")
            item = known.get(normalise_di(p.di, self.version))
            if item is None and p.format is None:
                raise ValueError(
                    f"{where}: di {p.di} is not in the {self.version} catalogue; give its format (and unit) "
                    "from the meter's manual"
                )
            fmt = parse_format(p.format or (item.format if item else ""))
            if p.element >= len(fmt.fields):
                raise ValueError(f"{where}: element {p.element} is past the {len(fmt.fields)} fields of {fmt.text}")
            if p.range is not None and p.range[0] > p.range[1]:
                raise ValueError(f"{where}: range must be [min, max]")
        return self


@dataclass(frozen=True, slots=True)
class ResolvedPoint:
    """A profile point with the catalogue filled in and the device's ratios applied (what the source reads)."""

    name: str
    di: str
    format: Format
    unit: str
    signed: bool
    element: int
    factor: float  # scale * ratio
    range: tuple[float, float] | None
    role: Role | None

    @property
    def counter_modulus(self) -> float | None:
        """Where this counter wraps (all nines plus one), in the point's unit: for the KPI engine's rollover."""
        field = self.format.fields[self.element]
        if field.kind != "number" or self.role is None or not self.role.is_counter:
            return None
        return float(10 ** (field.digits - field.decimals)) * abs(self.factor)


def resolve_points(profile: Dlt645ProfileConfig, ct_ratio: float, pt_ratio: float) -> tuple[ResolvedPoint, ...]:
    known = catalogue(profile.version)
    out = []
    for p in profile.points:
        item = known.get(normalise_di(p.di, profile.version))
        ratio = p.ratio or (item.ratio if item else "none")
        factor = {"ct_pt": ct_ratio * pt_ratio, "ct": ct_ratio, "pt": pt_ratio, "none": 1.0}[ratio] * p.scale
        fmt = parse_format(p.format or (item.format if item else ""))
        is_time = fmt.fields[p.element].kind == "date"  # a max demand's time: no unit, no ratio
        out.append(
            ResolvedPoint(
                name=p.name,
                di=normalise_di(p.di, profile.version),
                format=fmt,
                unit=p.unit if p.unit is not None else ("" if is_time or item is None else item.unit),
                signed=p.signed if p.signed is not None else (item.signed if item else False),
                element=p.element,
                factor=factor,
                range=p.range,
                role=p.role,
            )
        )
    return tuple(out)


class Dlt645DeviceConfig(StrictModel):
    """One DL/T 645 meter on a serial bus, a serial device server (tcp_gateway, framing rtu) or a dial-in DTU."""

    name: str = Field(pattern=NAME_PATTERN, description="Device name, unique in the site; an MQTT topic level")
    protocol: Literal["dlt645"] = Field(description="dlt645: a DL/T 645-2007 or -1997 meter")
    profile: str = Field(description="A protocol: dlt645 profile, e.g. dlt645-generic-2007-3ph-meter")
    bus: str = Field(description="Name of a serial bus, serial device server (framing: rtu) or DTU under buses")
    address: str = Field(
        description="The meter's 12-digit address from its nameplate, e.g. '000012345678' (quote it in YAML); "
        "energy-agent probe --read-address reads it on a point-to-point link"
    )
    version: Version | None = Field(None, description="2007 or 1997; unset: the profile's version")
    interval_s: float = Field(1.0, gt=0, le=86400, description="Polling interval in seconds")
    timeout_ms: float = Field(
        DEFAULT_TIMEOUT_MS, gt=0, le=60000, description="Reply timeout; unset: 1000 ms, or half of interval_s"
    )
    retries: int = Field(0, ge=0, le=5, description="Times a request is sent again after a timeout, 0..5")
    preamble: int = Field(4, ge=0, le=4, description="FE wake-up bytes sent before each request, 0..4")
    ct_ratio: float = Field(1.0, gt=0, le=100000, description="Current transformer ratio, e.g. 200 for 1000/5 A")
    pt_ratio: float = Field(1.0, gt=0, le=100000, description="Voltage transformer ratio, e.g. 100 for 10 kV/100 V")
    enabled: bool = Field(True, description="false: keep the device in the file but do not poll it")
    renewable: bool = Field(False, description="This meter measures renewable supply")
    tags: dict[str, str] = Field(default_factory=dict, description="Labels sent with the data")
    _points: tuple[ResolvedPoint, ...] = PrivateAttr(default=())

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"write the address in quotes ('{value:012d}'): as a number YAML drops its leading zeros")
        if isinstance(value, str):
            bare = value.replace(" ", "")
            if not re.fullmatch(r"[0-9]{1,12}", bare):
                raise ValueError(f"address {value!r} must be the meter's 12 decimal digits, e.g. '000012345678'")
            return bare.rjust(12, "0")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timeout_ms" not in data:
            interval = data.get("interval_s", 1.0)
            if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
                return {**data, "timeout_ms": min(DEFAULT_TIMEOUT_MS, interval * 500.0)}
        return data

    @property
    def points(self) -> list[ResolvedPoint]:
        """The profile's points with ratios applied, set by the loader (``bind``); empty before."""
        return list(self._points)

    def bind(self, profile: Dlt645ProfileConfig) -> None:
        self._points = resolve_points(profile, self.ct_ratio, self.pt_ratio)

    def effective_version(self, profile: Dlt645ProfileConfig) -> Version:
        return self.version or profile.version
