"""InfluxDB line protocol: escaping, field types and timestamp precision.

One line is ``measurement,tag=v,... field=v,... timestamp``. Escaping follows the InfluxDB reference:

- measurement: backslash-escape commas and spaces;
- tag keys, tag values and field keys: backslash-escape commas, equals signs and spaces;
- string field values: double-quoted, backslash-escape double quotes and backslashes.

Line protocol cannot carry a newline in a tag or (for InfluxDB 1.x) in a field value, so CR/LF/TAB are replaced by a
space; an empty tag value is not allowed, so such a tag is left out. Floats must be finite (InfluxDB rejects
NaN/inf), so a non-finite float field is left out. Integers are written with the ``i`` suffix, booleans as ``t``/``f``.
Tags are written sorted by key, as InfluxDB recommends.

Timestamps are integers in the writer's precision. :func:`timestamp` rounds a UNIX-seconds float to microseconds
first, so the same float always gives the same integer: a redelivered message lands on the same point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Precision = Literal["ns", "us", "ms", "s"]
FieldValue = float | int | bool | str

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ ", "\r": "\\ ", "\t": "\\ "})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": " ", "\r": " "})
_PER_SECOND: dict[str, int] = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000, "s": 1}
# InfluxDB 1.x ``/write`` names microseconds ``u``; the v2 API and influxdb-client say ``us``.
V1_PRECISION: dict[str, str] = {"ns": "ns", "us": "u", "ms": "ms", "s": "s"}


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key. A trailing backslash would escape the separator after it, so it
    is doubled."""
    out = text.translate(_KEY)
    if out.endswith("\\") and not out.endswith("\\\\"):
        out += "\\"
    return out


def format_field(value: FieldValue) -> str | None:
    """The line-protocol text of one field value, or None when it cannot be written (non-finite float)."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    return '"' + value.translate(_STRING) + '"'


def timestamp(ts: float, precision: Precision = "ns") -> int:
    """UNIX seconds -> integer timestamp in ``precision``, rounded through whole microseconds (deterministic)."""
    micros = round(ts * 1_000_000)
    if precision == "ns":
        return micros * 1000
    if precision == "us":
        return micros
    return round(micros * _PER_SECOND[precision] / 1_000_000)


def series(measurement: str, tags: Mapping[str, str]) -> str:
    """The escaped ``measurement,tag=value,...`` part of a line (tags sorted, empty ones left out)."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts)


def fields_text(fields: Mapping[str, FieldValue | None]) -> str:
    """The ``key=value,...`` part; empty when no field can be written."""
    body = []
    for key, fv in fields.items():
        if fv is None:
            continue
        text = format_field(fv)
        if text is not None:
            body.append(f"{escape_key(key)}={text}")
    return ",".join(body)


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    ts: int,
) -> str | None:
    """One line, or None when no field is left to write (a point needs at least one field)."""
    body = fields_text(fields)
    if not body:
        return None
    return f"{series(measurement, tags)} {body} {ts}"
