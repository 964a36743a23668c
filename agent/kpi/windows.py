"""Windows: which period a time belongs to, and per-window sums of segments.

A :class:`WindowSpec` maps a UNIX time to its period ``[start, end)``: fixed blocks aligned to local midnight
("15m", "1h", "8h"), shifts starting at given local times ("shift"), the local calendar day ("day") or month
("month"). Local time comes from an IANA zone, so a DST change gives a 23 h or 25 h day, as it should.

A :class:`WindowedSum` keeps, for one input and one window spec, the amount and covered seconds of each period.
Adding a segment is O(1) (O(k) for a segment spanning k periods, which only a long outage produces); a segment
crossing a boundary is split in proportion to time. A period is *final* once the input's data has passed its end
(the watermark) or ``settle_s`` after its end, whichever comes first; amounts arriving for a final period are
counted as ``late`` and not added, so a published final value never changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.kpi.counters import Segment

_FIXED = re.compile(r"^(\d+)(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


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
    if name in ("shift", "day", "month"):
        return None
    seconds = fixed_seconds(name)
    if seconds is None:
        return f"'{name}' is not a window: use e.g. 15m, 1h, 8h, shift, day or month"
    if seconds <= 0 or 86400 % seconds:
        return f"window '{name}' must divide a day evenly (e.g. 1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h)"
    return None


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One kind of window. ``shift_starts`` (minutes after local midnight, sorted) is used by "shift" only."""

    name: str
    tz: str = "UTC"
    shift_starts: tuple[int, ...] = (0, 480, 960)
    # the last periods computed (local-time arithmetic is the costly part): most lookups hit one of them
    _recent: list[tuple[float, float]] = field(default_factory=list, compare=False, hash=False, repr=False)

    def bounds(self, t: float) -> tuple[float, float]:
        """The period ``[start, end)`` holding ``t``."""
        for start, end in self._recent:
            if start <= t < end:
                return start, end
        b = self._compute(t)
        self._recent.insert(0, b)
        del self._recent[4:]
        return b

    def _compute(self, t: float) -> tuple[float, float]:
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(t, zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.name == "day":
            return _ts(midnight, zone), _ts(midnight + timedelta(days=1), zone)
        if self.name == "month":
            first = midnight.replace(day=1)
            nxt = (first + timedelta(days=32)).replace(day=1)
            return _ts(first, zone), _ts(nxt, zone)
        if self.name == "shift":
            return self._shift_bounds(t, midnight, zone)
        seconds = fixed_seconds(self.name)
        if seconds is None:
            raise ValueError(check_window_name(self.name))
        day_start = _ts(midnight, zone)
        day_end = _ts(midnight + timedelta(days=1), zone)
        start = day_start + (t - day_start) // seconds * seconds
        return start, min(start + seconds, day_end)

    def _shift_bounds(self, t: float, midnight: datetime, zone: ZoneInfo) -> tuple[float, float]:
        edges = [_ts(midnight + timedelta(days=d, minutes=m), zone) for d in (-1, 0, 1) for m in self.shift_starts]
        start = max(e for e in edges if e <= t)
        end = min(e for e in edges if e > t)
        return start, end


def _ts(local: datetime, zone: ZoneInfo) -> float:
    """UNIX time of a naive-in-zone wall time (re-attached so DST offsets are right)."""
    return local.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC).timestamp()


@dataclass(slots=True)
class Bucket:
    start: float
    end: float
    amount: float = 0.0
    covered_s: float = 0.0


@dataclass(slots=True)
class WindowedSum:
    """Per-period sums of one input's segments for one window spec."""

    spec: WindowSpec
    settle_s: float = 120.0
    watermark: float = float("-inf")  # end of the newest segment seen
    final_until: float = float("-inf")  # periods ending at or before this are final
    late: float = 0.0  # amount that arrived for periods already final
    _open: dict[float, Bucket] = field(default_factory=dict)
    _closed: dict[float, Bucket] = field(default_factory=dict)
    _cur: Bucket | None = None
    _prev_finalize: float = float("-inf")

    def add(self, seg: Segment) -> None:
        dt = seg.t1 - seg.t0
        if dt <= 0:
            return
        rate = seg.amount / dt
        t = seg.t0
        while t < seg.t1:
            b = self._bucket_at(t)
            part_end = min(b.end, seg.t1)
            part = part_end - t
            if b.end <= self.final_until:
                self.late += rate * part
            else:
                b.amount += rate * part
                if seg.covered:
                    b.covered_s += part
            t = part_end
        self.watermark = max(self.watermark, seg.t1)

    def _bucket_at(self, t: float) -> Bucket:
        cur = self._cur
        if cur is not None and cur.start <= t < cur.end:
            return cur
        start, end = self.spec.bounds(t)
        b = self._open.get(start) or self._closed.get(start)
        if b is None:
            b = Bucket(start, end)
            if end > self.final_until:
                self._open[start] = b
        self._cur = b
        return b

    def finalize(self, now: float) -> None:
        """Close every period that can no longer change: data past its end, or ``settle_s`` after its end."""
        self.final_until = max(self.final_until, self.watermark, now - self.settle_s)
        for start in [s for s, b in self._open.items() if b.end <= self.final_until]:
            self._closed[start] = self._open.pop(start)
        horizon = self._prev_finalize - self.settle_s
        for start in [s for s, b in self._closed.items() if b.end < horizon]:
            del self._closed[start]
        if self._cur is not None and self._cur.end <= self.final_until:
            self._cur = None
        self._prev_finalize = now

    def get(self, start: float) -> Bucket | None:
        """The period starting at ``start``, open or final, if any data reached it."""
        return self._open.get(start) or self._closed.get(start)
