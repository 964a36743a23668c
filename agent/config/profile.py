"""Device profile: a reusable description of one device type (its register map or OPC UA nodes).

A profile is written once per device model (e.g. ``device_profiles/generic-3ph-meter.yaml``) and referenced by
name from site files. Addresses are written as in the vendor's manual; ``address_base`` says whether that manual
counts registers from 0 or from 1 (there is no default: technicians must say which).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from agent.config.base import NOT_BOOL, StrictModel
from agent.model import Role


class RegisterKind(StrEnum):
    COIL = "coil"  # function code 1, bits
    DISCRETE_INPUT = "discrete_input"  # function code 2, bits
    HOLDING_REGISTER = "holding_register"  # function code 3, 16-bit words
    INPUT_REGISTER = "input_register"  # function code 4, 16-bit words

    @property
    def is_bit(self) -> bool:
        return self in (RegisterKind.COIL, RegisterKind.DISCRETE_INPUT)


class DataType(StrEnum):
    BOOL = "bool"  # a coil or discrete input
    BIT = "bit"  # one bit of a register; needs ``bit``
    INT8_HIGH = "int8_high"
    INT8_LOW = "int8_low"
    UINT8_HIGH = "uint8_high"
    UINT8_LOW = "uint8_low"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"  # needs ``length`` (in registers, two characters each)

    def registers(self, length: int | None = None) -> int:
        """How many 16-bit registers (or bits, for BOOL) one value occupies."""
        if self is DataType.STRING:
            if length is None:
                raise ValueError("string needs a length")
            return length
        return _WIDTH[self]


_WIDTH: dict[DataType, int] = {
    DataType.BOOL: 1,
    DataType.BIT: 1,
    DataType.INT8_HIGH: 1,
    DataType.INT8_LOW: 1,
    DataType.UINT8_HIGH: 1,
    DataType.UINT8_LOW: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.FLOAT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


class ByteOrder(StrEnum):
    """Byte and word order of multi-register values, in the letters vendors' manuals use.

    ABCD: big-endian words, most significant word first (Modbus default).
    CDAB: big-endian words, least significant word first ("word swap").
    BADC: bytes swapped inside each word, most significant word first ("byte swap").
    DCBA: fully little-endian.
    For 64-bit values the same rule extends over four words, and manuals print the eight bytes: ABCD is
    ABCDEFGH, CDAB is GHEFCDAB (words reversed), BADC is BADCFEHG, DCBA is HGFEDCBA. Profiles may write either
    form (:data:`ORDER_ALIASES`); other eight-letter orders (e.g. EFGHABCD) are not supported.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


# The eight-byte spelling of each order, as 64-bit register maps print it (byte A is the most significant).
ORDER_ALIASES = {"ABCDEFGH": "ABCD", "GHEFCDAB": "CDAB", "BADCFEHG": "BADC", "HGFEDCBA": "DCBA"}


def _order_alias(value: object) -> object:
    """Accept the eight-letter spellings; refuse other eight-letter orders with the exact mapping."""
    if not isinstance(value, str) or len(value) != 8:
        return value
    if value.upper() in ORDER_ALIASES:
        return ORDER_ALIASES[value.upper()]
    mapping = ", ".join(f"{k} (= {v})" for k, v in ORDER_ALIASES.items())
    raise ValueError(f"byte order {value!r} is not supported; for 64-bit values use one of {mapping}")


Order = Annotated[
    ByteOrder,
    BeforeValidator(_order_alias),
    WithJsonSchema({"enum": [*ByteOrder, *ORDER_ALIASES], "type": "string"}),
]


def _only_with(key: str, type_: str, schema_type: str) -> dict[str, Any]:
    """JSON Schema: ``key`` is required (a ``schema_type``) with ``type: type_`` and absent or null otherwise."""
    return {
        "if": {"properties": {"type": {"const": type_}}, "required": ["type"]},
        "then": {"properties": {key: {"type": schema_type}}, "required": [key]},
        "else": {"properties": {key: {"type": "null"}}},
    }


_KIND_TYPE_RULES: list[dict[str, Any]] = [
    {
        "if": {"properties": {"kind": {"enum": ["coil", "discrete_input"]}}, "required": ["kind"]},
        "then": {"properties": {"type": {"const": "bool"}}},
        "else": {"properties": {"type": {"not": {"const": "bool"}}}},
    },
    _only_with("length", "string", "integer"),
    _only_with("bit", "bit", "integer"),
]


class PointConfig(StrictModel):
    """One value the device exposes."""

    model_config = ConfigDict(json_schema_extra={"allOf": [*_KIND_TYPE_RULES]})  # _check_type_fits, for editors

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Point name, unique in the profile")
    unit: str = Field("", description="Engineering unit after scale and offset, e.g. kWh, kW, t/h, °C")
    kind: RegisterKind = Field(
        description="Modbus table the point lives in: holding_register, input_register, coil or discrete_input"
    )
    address: int = Field(ge=0, le=65536, description="Address as written in the manual (see address_base)")
    type: DataType = Field(description="Data type of the raw value, e.g. uint16, int32, float32, bit, string")
    order: Order | None = Field(
        None, description="Byte/word order (ABCD... or, for 64-bit, ABCDEFGH...); defaults to the profile's byte_order"
    )
    length: int | None = Field(
        None, ge=1, le=125, description="Type string: its length in registers (two characters each)"
    )
    bit: int | None = Field(None, ge=0, le=15, description="Bit number (0 = least significant) for type bit")
    scale: float = Field(1.0, description="value = raw * scale + offset")
    offset: float = Field(0.0, description="Added after scaling: value = raw * scale + offset")
    range: tuple[float, float] | None = Field(
        None, description="Plausible [min, max] after scaling; values outside are flagged uncertain"
    )
    role: Role | None = Field(None, description="What the KPI engine uses this point for")
    description: str = Field("", description="Free text for people: what the point is, notes from the manual")

    @model_validator(mode="after")
    def _check_type_fits(self) -> PointConfig:
        kind, data_type = self.kind, self.type
        if (kind in _BIT_KINDS) != (data_type is DataType.BOOL):
            if data_type is DataType.BOOL:
                raise ValueError(
                    f"type bool is for coils and discrete inputs; for one bit of a {kind.value} use type bit"
                )
            raise ValueError(f"a {kind.value} holds single bits: use type bool, not {data_type.value}")
        if (data_type is DataType.STRING) != (self.length is not None):
            if self.length is None:
                raise ValueError("a string needs length: the number of registers it spans (two characters each)")
            raise ValueError("length is only for type string")
        if (data_type is DataType.BIT) != (self.bit is not None):
            if self.bit is None:
                raise ValueError("type bit needs bit: the bit number 0..15 (0 = least significant)")
            raise ValueError("bit is only for type bit")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range must be [min, max], got [{self.range[0]}, {self.range[1]}]")
        # Profiles can hold 100,000 points, and each point's own set of the field names it was given costs more
        # than the rest of the point: points written alike share one (pydantic copies it before changing it).
        fields = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _FIELD_SETS.setdefault(frozenset(fields), fields))
        return self


_BIT_KINDS = frozenset((RegisterKind.COIL, RegisterKind.DISCRETE_INPUT))
_FIELD_SETS: dict[frozenset[str], set[str]] = {}


class SourceDocument(StrictModel):
    """Where the register map comes from, so a technician can check it."""

    document: str = Field(description="Vendor document name, e.g. 'DTSU666 user manual'")
    version: str = Field("", description="Document version or date")
    url: str = Field("", description="Where the document can be downloaded, if public")
    notes: str = Field("", description="What is uncertain or was not confirmed in the document")


class ProfileConfig(StrictModel):
    """A device profile file."""

    profile: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Profile name used by site files")
    description: str = Field("", description="What device this profile is for, in a few words")
    vendor: str = Field("", description="Manufacturer, e.g. CHINT")
    model: str = Field("", description="Device model or series, e.g. DTSU666")
    category: Literal[
        "energy_meter",
        "vfd",
        "motor",
        "boiler",
        "kiln",
        "compressor",
        "transformer",
        "production_counter",
        "flow_meter",
        "pump",
        "fan",
        "furnace",
        "other",
    ] = Field("other", description="Kind of device, shown by energy-agent list profiles")
    source: SourceDocument | None = Field(None, description="The vendor document the register map was taken from")
    protocol: Literal["modbus"] = Field("modbus", description="modbus: profiles describe Modbus register maps")
    address_base: Annotated[Literal[0, 1], NOT_BOOL] = Field(
        description="0 if the manual numbers registers from 0, 1 if from 1"
    )
    byte_order: Order = Field(
        ByteOrder.ABCD, description="Default order for multi-register points (64-bit: ABCDEFGH, GHEFCDAB, ...)"
    )
    max_registers_per_request: int = Field(
        125,
        ge=1,
        le=125,
        description="Most registers the device returns in one read, 1..125; lower it for devices that refuse long "
        "reads",
    )
    max_gap: int = Field(8, ge=0, le=124, description="Unused registers a coalesced read may span")
    points: list[PointConfig] = Field(min_length=1, description="The values to read, one entry per point")
