"""Window and shift names as the kpi section writes them: checked here, turned into periods by agent.kpi.windows."""

from __future__ import annotations

import re

_FIXED = re.compile(r"^(\d+)(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CALENDAR_WINDOWS = ("month", "year", "12mo")  # summed from day periods, see agent.kpi.windows.CalendarSum


def parse_hhmm(text: str) -> int:
    """'08:30' -> minutes after midnight; raises ValueError with the expected form."""
    m = _HHMM.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a local time HH:MM (00:00 to 23:59)")
    return int(m.group(1)) * 60 + int(m.group(2))


def fixed_seconds(name: str) -> int | None:
    """Length of a fixed window name like '15m' or '1h', or None if the name is not a fixed window."""
    m = _FIXED.match(name)
    return int(m.group(1)) * _SECONDS[m.group(2)] if m else None


def check_window_name(name: str) -> str | None:
    """Why ``name`` is not a valid window, or None if it is."""
    if name in ("shift", "day", *CALENDAR_WINDOWS):
        return None
    seconds = fixed_seconds(name)
    if seconds is None:
        return f"'{name}' is not a window: use e.g. 15m, 1h, 8h, shift, day, month, year or 12mo (rolling 12 months)"
    if seconds <= 0 or 86400 % seconds:
        return f"window '{name}' must divide a day evenly (e.g. 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h)"
    return None
