"""Account periods in the unit's time zone: 15 minutes, day, month, year to date; their labels and UNIX bounds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

Kind = Literal["15m", "day", "month", "ytd"]
QUARTER_S = 900.0


@dataclass(frozen=True, slots=True)
class Period:
    kind: Kind
    label: str  # 15m: local ISO start; day: 2026-11-03; month and ytd: 2026-11
    start: float  # UNIX seconds, inclusive
    end: float  # exclusive

    def quarters(self) -> int:
        return round((self.end - self.start) / QUARTER_S)


def _ts(d: dt.datetime) -> float:
    return d.timestamp()


def day(label: str, zone: ZoneInfo) -> Period:
    d = dt.date.fromisoformat(label)
    a = dt.datetime.combine(d, dt.time(), zone)
    b = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), zone)
    return Period("day", d.isoformat(), _ts(a), _ts(b))


def month(label: str, zone: ZoneInfo) -> Period:
    """``2026-11`` -> that month; raises ValueError for anything else."""
    year, mon = (int(x) for x in label.split("-"))
    a = dt.datetime(year, mon, 1, tzinfo=zone)
    b = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return Period("month", f"{year:04d}-{mon:02d}", _ts(a), _ts(b))


def year_to_date(label: str, zone: ZoneInfo) -> Period:
    m = month(label, zone)
    a = dt.datetime(int(label[:4]), 1, 1, tzinfo=zone)
    return Period("ytd", m.label, _ts(a), m.end)


def quarter(start: float, zone: ZoneInfo) -> Period:
    return Period("15m", dt.datetime.fromtimestamp(start, zone).isoformat(timespec="minutes"), start, start + QUARTER_S)


def days_of(m: Period, zone: ZoneInfo) -> list[Period]:
    out: list[Period] = []
    d = dt.datetime.fromtimestamp(m.start, zone).date()
    while True:
        p = day(d.isoformat(), zone)
        if p.start >= m.end:
            return out
        out.append(p)
        d += dt.timedelta(days=1)


def months_of_year(label: str, zone: ZoneInfo) -> list[Period]:
    """January .. the month of ``label``."""
    year, mon = (int(x) for x in label.split("-"))
    return [month(f"{year:04d}-{m:02d}", zone) for m in range(1, mon + 1)]


def same_month_last_year(label: str) -> str:
    year, mon = (int(x) for x in label.split("-"))
    return f"{year - 1:04d}-{mon:02d}"


def local_date(ts: float, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts, zone).date()


def quarter_floor(ts: float) -> float:
    return ts - ts % QUARTER_S
