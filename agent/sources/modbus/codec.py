"""Register codec: raw Modbus registers (and bits) <-> point values, compiled once per point.

Layout rule for every multi-byte type, in the letters of ``ByteOrder`` (A = most significant byte):

    ABCD  registers most significant first, high byte first in each register   -> big-endian over the raw bytes
    DCBA  registers least significant first, low byte first in each register   -> little-endian over the raw bytes
    BADC  registers most significant first, low byte first in each register    -> big-endian over byte-swapped words
    CDAB  registers least significant first, high byte first in each register  -> little-endian over byte-swapped words

The same rule covers 16-bit (one register: ABCD = CDAB, BADC = DCBA), 32-bit (two) and 64-bit (four registers).
So the hot path never shuffles words: a read's payload (big-endian register bytes, as on the wire) is used as
is, plus, when a read holds a BADC/CDAB point, one byte-swapped copy of it; each point is then a single
``struct.unpack_from`` at a precomputed offset.

Strings: two characters per register; ABCD/CDAB put the first character in the high byte, BADC/DCBA in the low
byte. Trailing NULs and spaces are stripped; invalid UTF-8 becomes U+FFFD; decoding never raises.
8-bit types and ``bit`` read one register (in the point's byte order) and take the high/low byte or the bit.

Scaling: ``value = raw * scale + offset``; integers stay ``int`` when scale == 1 and offset == 0.
NaN/Inf (raw or after scaling) -> bad, reason "not a number"; outside ``range`` -> uncertain with a reason like
"out of range: 812.0 > 600.0".
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config.profile import ByteOrder, DataType, PointConfig
from agent.model import Quality, Value

# struct code, signed, float per type (for types decoded by one unpack)
_CODES: dict[DataType, str] = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT16: "e",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
    # 8-bit and bit types read their whole register first
    DataType.INT8_HIGH: "H",
    DataType.INT8_LOW: "H",
    DataType.UINT8_HIGH: "H",
    DataType.UINT8_LOW: "H",
    DataType.BIT: "H",
}
_FLOATS = frozenset({DataType.FLOAT16, DataType.FLOAT32, DataType.FLOAT64})
_INTS = frozenset(
    {
        DataType.INT16,
        DataType.UINT16,
        DataType.INT32,
        DataType.UINT32,
        DataType.INT64,
        DataType.UINT64,
        DataType.INT8_HIGH,
        DataType.INT8_LOW,
        DataType.UINT8_HIGH,
        DataType.UINT8_LOW,
    }
)
_SWAPPED_ORDERS = frozenset({ByteOrder.BADC, ByteOrder.CDAB})
_STRING_SWAPPED = frozenset({ByteOrder.BADC, ByteOrder.DCBA})  # strings: low byte first in each register
_LITTLE_ORDERS = frozenset({ByteOrder.DCBA, ByteOrder.CDAB})
NOT_A_NUMBER = "not a number"
_M_BOOL, _M_STRING, _M_INT, _M_BYTE, _M_BIT, _M_SCALED = range(6)

Decoded = tuple[Quality, Value, str]


def swap_bytes(data: bytes) -> bytes:
    """Swap the two bytes of every 16-bit register (len(data) must be even)."""
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """Registers as they travel on the wire: big-endian, two bytes each."""
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


@dataclass(frozen=True, slots=True)
class PointCodec:
    """How to decode one point; built once by ``compile_point``. ``width`` counts registers (bits for bool)."""

    name: str
    data_type: DataType
    order: ByteOrder
    width: int
    scale: float
    offset: float
    low: float | None
    high: float | None
    bit: int
    swapped: bool  # decode from the byte-swapped copy of the payload
    unpack: struct.Struct | None  # None for bool and string
    mode: int  # which branch of decode() applies, chosen once
    ndigits: int | None = None  # integer scaled by 10**-k: round to k decimals (4215272.44, not ...4399999995)

    @property
    def is_bool(self) -> bool:
        return self.data_type is DataType.BOOL

    def decode(self, data: bytes, swapped: bytes | None, offset: int) -> Decoded:
        """Decode from a read's payload. ``offset`` is the register (or, for bool, bit) index of the point in
        the payload; ``swapped`` is ``swap_bytes(data)`` when the read holds a BADC/CDAB point. Never raises
        for any payload that is long enough (the read plan guarantees that)."""
        mode = self.mode
        if mode == _M_BOOL:
            return Quality.GOOD, bool((data[offset >> 3] >> (offset & 7)) & 1), ""
        buf = swapped if self.swapped else data
        assert buf is not None, "swapped payload required"
        if mode == _M_STRING:
            raw_text = buf[offset * 2 : (offset + self.width) * 2]
            return Quality.GOOD, raw_text.decode("utf-8", errors="replace").rstrip("\x00 "), ""
        assert self.unpack is not None
        raw: int | float = self.unpack.unpack_from(buf, offset * 2)[0]
        if mode == _M_INT:
            return self._ranged(raw)
        if mode == _M_BYTE:
            raw = _byte_of(self.data_type, int(raw))
            if self.scale == 1.0 and self.offset == 0.0:
                return self._ranged(raw)
        elif mode == _M_BIT:
            return Quality.GOOD, bool((int(raw) >> self.bit) & 1), ""
        if self.ndigits is not None:
            return self._ranged(round(raw * self.scale + self.offset, self.ndigits))
        return self._checked(raw * self.scale + self.offset)

    @property
    def plain_float(self) -> bool:
        """A float read as it is: no scale, offset or range (``finish`` is then ``raw + 0.0`` and a finite check)."""
        return (
            self.mode == _M_SCALED
            and self.ndigits is None
            and self.scale == 1.0
            and self.offset == 0.0
            and (self.low is None and self.high is None and self.data_type in (DataType.FLOAT32, DataType.FLOAT64))
        )

    def finish(self, raw: int | float) -> Decoded:
        """``decode`` after the unpack, for a number read by ``bulk_struct`` (mode int or scaled)."""
        if self.mode == _M_INT:
            return self._ranged(raw)
        if self.ndigits is not None:
            return self._ranged(round(raw * self.scale + self.offset, self.ndigits))
        return self._checked(raw * self.scale + self.offset)

    def decode_registers(self, registers: Sequence[int]) -> Decoded:
        """Decode from the point's own registers (or bits, 0/1 each, for bool)."""
        if self.is_bool:
            return Quality.GOOD, bool(registers[0]), ""
        data = registers_to_bytes(registers)
        return self.decode(data, swap_bytes(data), 0)

    def _checked(self, value: float) -> Decoded:
        if not math.isfinite(value):
            return Quality.BAD, None, NOT_A_NUMBER
        return self._ranged(value)

    def _ranged(self, value: float) -> Decoded:
        if self.low is not None and value < self.low:
            return Quality.UNCERTAIN, value, f"out of range: {float(value)} < {self.low}"
        if self.high is not None and value > self.high:
            return Quality.UNCERTAIN, value, f"out of range: {float(value)} > {self.high}"
        return Quality.GOOD, value, ""

    def encode(self, value: Value) -> list[int]:
        """Registers (or one bit 0/1, for bool) holding ``value``: the inverse of ``decode``. For 8-bit and bit
        types only that byte or bit is set; callers sharing a register OR the results."""
        return encode(self, value)


def bulk_struct(points: Sequence[tuple[PointCodec, int]]) -> struct.Struct | None:
    """One Struct that unpacks the raw numbers of every ``(codec, register offset)`` of a read in one call (each
    codec's own format, pad bytes between), when each is an int or scaled number read from the unswapped payload,
    all of one byte order, in increasing non-overlapping register order; None otherwise (each point then decodes on
    its own). The values are those ``decode`` unpacks; ``PointCodec.finish`` does the rest."""
    parts: list[str] = []
    endian = ""
    at = 0
    for codec, offset in points:
        if codec.mode not in (_M_INT, _M_SCALED) or codec.swapped or codec.unpack is None or offset < at:
            return None
        fmt = codec.unpack.format
        if endian and fmt[0] != endian:
            return None
        endian = fmt[0]
        if offset > at:
            parts.append(f"{(offset - at) * 2}x")
        parts.append(fmt[1:])
        at = offset + codec.width
    return struct.Struct(endian + "".join(parts)) if parts else None


def _byte_of(dt: DataType, reg: int) -> int:
    if dt is DataType.UINT8_HIGH:
        return reg >> 8
    if dt is DataType.UINT8_LOW:
        return reg & 0xFF
    b = reg >> 8 if dt is DataType.INT8_HIGH else reg & 0xFF
    return b - 256 if b > 127 else b


@functools.cache  # 64 combinations at most: one Struct each, not one per point (a profile may have 100,000)
def _struct_for(dt: DataType, order: ByteOrder) -> struct.Struct:
    endian = "<" if order in _LITTLE_ORDERS else ">"
    return struct.Struct(endian + _CODES[dt])


def compile_point(point: PointConfig, default_order: ByteOrder) -> PointCodec:
    order = point.order or default_order
    dt = point.type
    unpack = None if dt in (DataType.BOOL, DataType.STRING) else _struct_for(dt, order)
    low, high = point.range if point.range is not None else (None, None)
    plain = point.scale == 1.0 and point.offset == 0.0
    if dt is DataType.BOOL:
        mode = _M_BOOL
    elif dt is DataType.STRING:
        mode = _M_STRING
    elif dt is DataType.BIT:
        mode = _M_BIT
    elif dt in (DataType.INT8_HIGH, DataType.INT8_LOW, DataType.UINT8_HIGH, DataType.UINT8_LOW):
        mode = _M_BYTE
    elif dt in _INTS and plain:
        mode = _M_INT
    else:
        mode = _M_SCALED
    return PointCodec(
        name=point.name,
        data_type=dt,
        order=order,
        width=dt.registers(point.length),
        scale=point.scale,
        offset=point.offset,
        low=low,
        high=high,
        bit=point.bit or 0,
        swapped=dt is not DataType.BOOL and order in (_STRING_SWAPPED if dt is DataType.STRING else _SWAPPED_ORDERS),
        unpack=unpack,
        mode=mode,
        ndigits=_decimal_digits(point.scale, point.offset) if dt in _INTS and not plain else None,
    )


def _decimal_digits(scale: float, offset: float) -> int | None:
    """k when scale is 10**-k (k = 1..9) or a whole number (k = 0) and offset has at most k decimals, else None
    (no rounding: the product is then as exact as a float gets anyway)."""
    for k in range(1, 10):
        if scale == 10.0**-k:
            return k if round(offset, k) == offset else None
    if scale == round(scale) and offset == round(offset):
        return 0
    return None


def encode(codec: PointCodec, value: Value) -> list[int]:
    dt = codec.data_type
    if dt is DataType.BOOL:
        return [1 if value else 0]
    if dt is DataType.STRING:
        text = str(value).encode("utf-8")[: codec.width * 2].ljust(codec.width * 2, b"\x00")
        data = swap_bytes(text) if codec.swapped else text
        return bytes_to_registers(data)
    raw: int | float
    if dt is DataType.BIT:
        raw = (1 << codec.bit) if value else 0
    else:
        if not isinstance(value, (int, float)):
            raise TypeError(f"{codec.name}: cannot encode {value!r} as {dt.value}")
        raw = (value - codec.offset) / codec.scale if (codec.scale, codec.offset) != (1.0, 0.0) else value
        if dt in _INTS:
            raw = round(raw)
            if codec.mode == _M_BYTE:  # place the byte in its register, then apply the order like any register
                raw = (raw & 0xFF) << 8 if dt in (DataType.INT8_HIGH, DataType.UINT8_HIGH) else raw & 0xFF
    assert codec.unpack is not None
    packed = codec.unpack.pack(raw)
    data = swap_bytes(packed) if codec.swapped else packed
    return bytes_to_registers(data)


# --- probe support: which byte order makes a multi-register value plausible -------------------------------


@dataclass(frozen=True, slots=True)
class OrderGuess:
    order: ByteOrder
    value: Value
    quality: Quality
    score: float  # higher is more plausible


def _plausibility(value: Value, low: float | None, high: float | None) -> float:
    if value is None or isinstance(value, (bool, str)):
        return -1e9
    v = float(value)
    if not math.isfinite(v):
        return -1e9
    score = 0.0
    if (low is None or v >= low) and (high is None or v <= high):
        score += 100.0 if low is not None or high is not None else 0.0
    else:
        score -= 100.0
    mag = abs(v)
    if mag == 0.0:
        score += 5.0
    elif 1e-3 <= mag <= 1e7:
        score += 20.0 - abs(math.log10(mag) - 2.0)  # meters' values cluster around 1..10^5
    else:
        score -= min(60.0, abs(math.log10(mag)))
    # noise digits: a true reading has few significant digits, a mis-ordered float has ~7-17
    digits = len(f"{v:.7g}".replace("-", "").replace(".", "").split("e")[0].strip("0"))
    score -= digits
    return score


def decode_all_orders(
    registers: Sequence[int],
    data_type: DataType,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    value_range: tuple[float, float] | None = None,
) -> list[OrderGuess]:
    """Decode ``registers`` as ``data_type`` in each of the four orders, most plausible first (finite, inside
    ``value_range`` if given, sane magnitude, few noise digits). For the probe's ``--orders``."""
    guesses = []
    for order in ByteOrder:
        point = PointConfig.model_validate(
            {
                "name": "probe",
                "kind": "holding_register",
                "address": 0,
                "type": data_type,
                "order": order,
                "scale": scale,
                "offset": offset,
                "range": value_range,
                **({"length": len(registers)} if data_type is DataType.STRING else {}),
            }
        )
        codec = compile_point(point, order)
        quality, value, _ = codec.decode_registers(list(registers)[: codec.width])
        low, high = value_range if value_range is not None else (None, None)
        guesses.append(OrderGuess(order, value, quality, _plausibility(value, low, high)))
    guesses.sort(key=lambda g: -g.score)
    return guesses
