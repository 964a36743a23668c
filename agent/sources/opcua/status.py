"""OPC UA status codes and DataValues to sample quality.

Good -> good, Uncertain* -> uncertain, Bad* -> bad (value dropped), always keeping the status name as the reason
(e.g. ``BadSensorFailure``), so the centre sees the server's own words. A good value outside the point's plausible
range becomes uncertain with ``out of range: ...``. Pure functions; no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from asyncua import ua
from asyncua.ua import status_codes

from agent.model import Quality, Value

_SEVERITY_MASK = 0xC0000000
_CODE_MASK = 0xFFFF0000  # the low 16 bits are info bits (overflow, limit bits, ...)


def status_name(code: int) -> str:
    """The symbolic name of a status code, ignoring info bits: 0x808A0000 -> BadSensorFailure."""
    name, _ = status_codes.get_name_and_doc(code & _CODE_MASK)
    return name


def quality_of(code: int) -> Quality:
    severity = code & _SEVERITY_MASK
    if severity == 0:
        return Quality.GOOD
    if severity == 0x40000000:
        return Quality.UNCERTAIN
    return Quality.BAD


@dataclass(frozen=True, slots=True)
class Reading:
    """A DataValue turned into what a Sample needs."""

    value: Value
    quality: Quality
    reason: str
    source_ts: float | None
    server_ts: float | None


def _epoch(t: dt.datetime | None) -> float | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def convert_value(raw: Any) -> tuple[Value, str]:
    """A Variant's Python value as a sample value, or (None, why not)."""
    if raw is None:
        return None, "no value"
    if isinstance(raw, bool | int | str):
        return raw, ""
    if isinstance(raw, float):
        if math.isnan(raw) or math.isinf(raw):
            return None, f"not a number: {raw}"
        return raw, ""
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or "", ""
    if isinstance(raw, dt.datetime):
        return _epoch(raw), ""
    if isinstance(raw, bytes | bytearray):
        return None, "unsupported type ByteString"
    if isinstance(raw, list | tuple):
        return None, "unsupported type array"
    return None, f"unsupported type {type(raw).__name__}"


def reading_of(data: ua.DataValue, value_range: tuple[float, float] | None = None) -> Reading:
    """Quality, reason and timestamps of one DataValue (from a Read or a data-change notification)."""
    code = data.StatusCode.value if data.StatusCode is not None else 0
    quality = quality_of(code)
    reason = "" if quality is Quality.GOOD else status_name(code)
    source_ts = _epoch(data.SourceTimestamp)
    server_ts = _epoch(data.ServerTimestamp)
    if quality is Quality.BAD:
        return Reading(None, quality, reason, source_ts, server_ts)
    value, why = convert_value(data.Value.Value if data.Value is not None else None)
    if value is None:
        return Reading(None, Quality.BAD, why, source_ts, server_ts)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if quality is Quality.GOOD and value_range is not None and numeric:
        assert isinstance(value, int | float)
        low, high = value_range
        if value < low:
            return Reading(value, Quality.UNCERTAIN, f"out of range: {value} < {low}", source_ts, server_ts)
        if value > high:
            return Reading(value, Quality.UNCERTAIN, f"out of range: {value} > {high}", source_ts, server_ts)
    return Reading(value, quality, reason, source_ts, server_ts)


def change_time(change: Reading, received: float, last: float, now: float) -> float:
    """The sample time of a data change: its source (or server) time when that is after the point's last sample
    and not ahead of our clock (the server's clock agrees with ours), else when it was received; always later than
    the point's previous sample, so no two samples of a point share a time."""
    source = change.source_ts if change.source_ts is not None else change.server_ts
    ts = source if source is not None and last < source <= now + 1.0 else received
    return ts if ts > last else last + 0.001
