"""A device's Modbus register image, built from its profile and filled from the plant model.

Where a point's value comes from (first match):
1. ``values[point.role]`` when the point has a role;
2. ``values[point.name]`` (the model's extra names, e.g. ``voltage_l1_v``, ``running``, ``burner_on``);
3. a synthetic value: strings -> ``"SIM-<device>"`` (a serial number), bool/bit -> 0 (no alarm),
   numbers -> the middle of the point's ``range``, or 0 without a range.

Encoding is the inverse of the agent's decoding rule (``value = raw * scale + offset``), written here on purpose
rather than imported: the simulator is an independent oracle for the agent's codec, and it wraps integers at the
type's limit (``raw mod 2**bits``), which is how a uint32 or uint16 counter rolls over in a real meter.
Byte orders follow ``agent.config.profile.ByteOrder``: ABCD big-endian, DCBA little-endian, BADC big-endian with
the bytes of every register swapped, CDAB little-endian with the bytes of every register swapped. One-register
types follow the same rule (so BADC/DCBA swap the two bytes); 8-bit and bit types are placed in the ABCD register
and then swapped the same way.

Addresses: a profile's manual address minus ``address_base`` is the protocol address. A table's image spans from
its lowest to its highest point; unused registers inside read as 0, anything outside (or any register of a point
declared a *hole*) answers ILLEGAL DATA ADDRESS.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from agent.config.profile import ByteOrder, DataType, PointConfig, ProfileConfig, RegisterKind

FC_TABLE: dict[int, RegisterKind] = {
    1: RegisterKind.COIL,
    2: RegisterKind.DISCRETE_INPUT,
    3: RegisterKind.HOLDING_REGISTER,
    4: RegisterKind.INPUT_REGISTER,
}

_INT_BITS: dict[DataType, tuple[int, bool]] = {
    DataType.INT16: (16, True),
    DataType.UINT16: (16, False),
    DataType.INT32: (32, True),
    DataType.UINT32: (32, False),
    DataType.INT64: (64, True),
    DataType.UINT64: (64, False),
}
_FLOATS: dict[DataType, str] = {DataType.FLOAT16: "e", DataType.FLOAT32: "f", DataType.FLOAT64: "d"}
_BYTES = (DataType.INT8_HIGH, DataType.INT8_LOW, DataType.UINT8_HIGH, DataType.UINT8_LOW)


def load_profile(path: str | Path) -> ProfileConfig:
    """A profile file read and validated (plain YAML; the agent's loader adds file:line errors)."""
    with Path(path).open(encoding="utf-8") as f:
        data = YAML(typ="safe", pure=True).load(f)
    return ProfileConfig.model_validate(data)


def _swap(data: bytes) -> bytes:
    return b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))


def _words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def wrap_value(point: PointConfig) -> float | None:
    """The engineering value at which an unsigned integer point rolls over to 0, or None for other types."""
    bits = _INT_BITS.get(point.type)
    if bits is None or bits[1]:
        return None
    return float(2 ** bits[0]) * point.scale + point.offset


def encode_point(point: PointConfig, order: ByteOrder, value: float | str) -> list[int]:
    """Registers (or one 0/1 for a bool) holding ``value`` as the device would show it."""
    dt = point.type
    if dt is DataType.BOOL:
        return [1 if value else 0]
    if dt is DataType.STRING:
        assert point.length is not None
        text = str(value).encode("utf-8")[: point.length * 2].ljust(point.length * 2, b"\x00")
        return _words(_swap(text) if order in (ByteOrder.BADC, ByteOrder.DCBA) else text)
    if not isinstance(value, (int, float)):
        raise TypeError(f"{point.name}: cannot encode {value!r} as {dt.value}")
    raw = (value - point.offset) / point.scale
    if dt is DataType.BIT:
        assert point.bit is not None
        word = (1 << point.bit) if value else 0
        data = word.to_bytes(2, "big")
    elif dt in _BYTES:
        byte = round(raw) & 0xFF
        word = byte << 8 if dt in (DataType.INT8_HIGH, DataType.UINT8_HIGH) else byte
        data = word.to_bytes(2, "big")
    elif dt in _FLOATS:
        code = _FLOATS[dt]
        data = struct.pack(("<" if order in (ByteOrder.DCBA, ByteOrder.CDAB) else ">") + code, raw)
    else:
        nbits, _signed = _INT_BITS[dt]
        if not math.isfinite(raw):
            raise ValueError(f"{point.name}: cannot encode {value!r} as {dt.value}")
        wrapped = round(raw) % (1 << nbits)  # two's complement for signed types, rollover for counters
        little = order in (ByteOrder.DCBA, ByteOrder.CDAB)
        data = wrapped.to_bytes(nbits // 8, "little" if little else "big")
    if dt in (DataType.BIT, *_BYTES):
        return _words(_swap(data) if order in (ByteOrder.BADC, ByteOrder.DCBA) else data)
    return _words(_swap(data) if order in (ByteOrder.BADC, ByteOrder.CDAB) else data)


@dataclass(frozen=True, slots=True)
class _Placed:
    point: PointConfig
    order: ByteOrder
    start: int  # protocol address
    width: int
    key: str


class RegisterImage:
    """The four Modbus tables of one device. ``refresh(values)`` re-encodes every point; ``read`` serves."""

    def __init__(self, device: str, profile: ProfileConfig, holes: Iterable[str] = ()) -> None:
        self.device = device
        self.profile = profile
        self.holes = frozenset(holes)
        unknown = self.holes - {p.name for p in profile.points}
        if unknown:
            raise ValueError(f"{device}: hole names no point of profile {profile.profile}: {sorted(unknown)}")
        self._placed: list[_Placed] = []
        self._bounds: dict[RegisterKind, tuple[int, int]] = {}
        self._invalid: dict[RegisterKind, set[int]] = {k: set() for k in RegisterKind}
        for p in profile.points:
            start = p.address - profile.address_base
            width = p.type.registers(p.length)
            placed = _Placed(p, p.order or profile.byte_order, start, width, p.role.value if p.role else p.name)
            self._placed.append(placed)
            lo, hi = self._bounds.get(p.kind, (start, start + width))
            self._bounds[p.kind] = (min(lo, start), max(hi, start + width))
            if p.name in self.holes:
                self._invalid[p.kind].update(range(start, start + width))
        self._tables: dict[RegisterKind, dict[int, int]] = {k: {} for k in RegisterKind}

    def point(self, name: str) -> PointConfig:
        for pl in self._placed:
            if pl.point.name == name:
                return pl.point
        raise KeyError(f"{self.device}: profile {self.profile.profile} has no point {name!r}")

    def point_for(self, key: str) -> PointConfig:
        """The point showing ``key`` (a role value or a point name)."""
        for pl in self._placed:
            if pl.key == key or pl.point.name == key:
                return pl.point
        raise KeyError(f"{self.device}: profile {self.profile.profile} has no point for {key!r}")

    def refresh(self, values: dict[str, float]) -> None:
        tables: dict[RegisterKind, dict[int, int]] = {k: {} for k in RegisterKind}
        for pl in self._placed:
            words = encode_point(pl.point, pl.order, self._value(pl, values))
            table = tables[pl.point.kind]
            for i, w in enumerate(words):
                table[pl.start + i] = table.get(pl.start + i, 0) | w
        self._tables = tables

    def _value(self, pl: _Placed, values: dict[str, float]) -> float | str:
        if pl.key in values:
            return values[pl.key]
        if pl.point.name in values:
            return values[pl.point.name]
        if pl.point.type is DataType.STRING:
            return f"SIM-{self.device}"
        if pl.point.type in (DataType.BOOL, DataType.BIT):
            return 0.0
        if pl.point.range is not None:
            return (pl.point.range[0] + pl.point.range[1]) / 2.0
        return 0.0

    def valid(self, kind: RegisterKind, address: int, count: int) -> bool:
        bounds = self._bounds.get(kind)
        if bounds is None or address < bounds[0] or address + count > bounds[1]:
            return False
        invalid = self._invalid[kind]
        return not any(a in invalid for a in range(address, address + count))

    def read(self, kind: RegisterKind, address: int, count: int) -> list[int] | None:
        """Words (or 0/1 bits) at ``address``; None when any of them is outside the image."""
        if not self.valid(kind, address, count):
            return None
        table = self._tables[kind]
        return [table.get(a, 0) for a in range(address, address + count)]
