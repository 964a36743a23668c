"""DL/T 645 values: packed BCD, least significant byte first, implied decimals, sign bit, date/time fields.

``decode_field(raw, field, signed)`` returns ``(value, None)`` or ``(None, reason)``; it never raises on input bytes.
An invalid BCD nibble (A-F), a wrong length or an impossible date makes the sample bad with that reason.
Date fields decode to numbers a person can read: ``YYMMDDWW`` -> YYYYMMDD, ``hhmmss`` -> hhmmss, ``MMDDhhmm`` ->
MMDDhhmm; ``YYMMDDhhmm`` (the time of a max demand or a freeze) -> UNIX seconds in the meter's time zone.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from agent.config.dlt645 import Field_

_BCD: dict[int, int] = {((v // 10) << 4) | (v % 10): v for v in range(100)}


def bcd_digits(raw: bytes) -> int | None:
    """The decimal number of BCD bytes given low byte first; None if a nibble is not 0-9."""
    total = 0
    for b in reversed(raw):
        v = _BCD.get(b)
        if v is None:
            return None
        total = total * 100 + v
    return total


def decode_number(raw: bytes, field: Field_, signed: bool) -> tuple[float | None, str | None]:
    if len(raw) != field.size:
        return None, f"wrong length: {len(raw)} bytes for {field.size}"
    negative = False
    if signed and raw[-1] & 0x80:
        negative = True
        raw = raw[:-1] + bytes([raw[-1] & 0x7F])
    digits = bcd_digits(raw)
    if digits is None:
        return None, f"invalid BCD {raw[::-1].hex().upper()}"
    value = digits / 10**field.decimals if field.decimals else float(digits)
    return (-value if negative else value), None


def decode_date(raw: bytes, field: Field_, tz: ZoneInfo) -> tuple[float | None, str | None]:
    if len(raw) != field.size:
        return None, f"wrong length: {len(raw)} bytes for {field.size}"
    parts = [_BCD.get(b) for b in reversed(raw)]
    if any(p is None for p in parts):
        return None, f"invalid BCD {raw[::-1].hex().upper()}"
    v = [p for p in parts if p is not None]
    names = [field.pattern[i : i + 2] for i in range(0, len(field.pattern), 2)]
    got = dict(zip(names, v, strict=True))
    year = 2000 + got.get("YY", 0)
    try:
        if "MM" in got:
            dt.date(year, got["MM"], got["DD"])
        if got.get("hh", 0) > 23 or got.get("mm", 0) > 59 or got.get("ss", 0) > 59 or got.get("WW", 0) > 6:
            raise ValueError("time out of range")
    except (ValueError, KeyError):
        return None, f"invalid date/time {raw[::-1].hex().upper()} ({field.pattern})"
    if field.pattern.startswith("YYMMDDhhmm"):
        at = dt.datetime(year, got["MM"], got["DD"], got["hh"], got["mm"], got.get("ss", 0), tzinfo=tz)
        return at.timestamp(), None
    if field.pattern == "YYMMDDWW":
        return float(year * 10000 + got["MM"] * 100 + got["DD"]), None
    if field.pattern == "YYMMDD":
        return float(year * 10000 + got["MM"] * 100 + got["DD"]), None
    number = 0
    for p in v:
        number = number * 100 + p
    return float(number), None


def decode_field(raw: bytes, field: Field_, signed: bool, tz: ZoneInfo) -> tuple[float | None, str | None]:
    if field.kind == "number":
        return decode_number(raw, field, signed)
    return decode_date(raw, field, tz)


def encode_number(value: float, field: Field_, signed: bool) -> bytes:
    """The inverse of ``decode_number`` (the simulator's side): rounds to the field's decimals and wraps at its
    digit count, as a meter's counter does."""
    negative = signed and value < 0
    scaled = round(abs(value) * 10**field.decimals) % 10**field.digits
    text = f"{scaled:0{field.size * 2}d}"
    raw = bytearray(bytes.fromhex(text)[::-1])
    if negative:
        raw[-1] |= 0x80
    return bytes(raw)


def encode_date(at: dt.datetime, field: Field_) -> bytes:
    values = {
        "YY": at.year % 100,
        "MM": at.month,
        "DD": at.day,
        "WW": (at.weekday() + 1) % 7,
        "hh": at.hour,
        "mm": at.minute,
        "ss": at.second,
    }
    names = [field.pattern[i : i + 2] for i in range(0, len(field.pattern), 2)]
    return bytes(((values[n] // 10) << 4) | (values[n] % 10) for n in names)[::-1]
