"""Windows: which period a time belongs to, and per-window sums of segments.

A :class:`WindowSpec` maps a UNIX time to its period ``[start, end)``: fixed blocks aligned to local midnight
("15m", "1h", "8h"), shifts starting at given local times ("shift"), the local calendar day ("day"), month
("month") or year ("year"), and the rolling 12 months ("12mo": the local calendar month holding the time and the
eleven before it; its periods overlap, each ends one month after the previous one). Local time comes from an
IANA zone, so a DST change gives a 23 h or 25 h day, as it should.

A :class:`WindowedSum` keeps, for one input and one window spec, the amount and covered seconds of each period.
Adding a segment is O(1) (O(k) for a segment spanning k periods, which only a long outage produces); a segment
crossing a boundary is split in proportion to time. A period is *final* once the input's data has passed its end
(the watermark) or ``settle_s`` after its end, whichever comes first; amounts arriving for a final period are
counted as ``late`` and not added, so a published final value never changes.

The calendar windows (month, year, 12mo) cost nothing per segment: a :class:`CalendarSum` adds up the input's day
periods, the final ones folded into a :class:`MonthLedger` (at most ``LEDGER_MONTHS`` months per input) when they
close, the open ones read from the day sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.config.kpi.windows import CALENDAR_WINDOWS as CALENDAR_WINDOWS
from agent.config.kpi.windows import check_window_name as check_window_name
from agent.config.kpi.windows import fixed_seconds as fixed_seconds
from agent.config.kpi.windows import parse_hhmm as parse_hhmm
from agent.kpi.counters import Segment

LEDGER_MONTHS = 25  # months kept per input: a year and a rolling 12 months back, and a year of reporting slack


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One kind of window. ``shift_starts`` (minutes after local midnight, sorted) is used by "shift" only."""

    name: str
    tz: str = "UTC"
    shift_starts: tuple[int, ...] = (0, 480, 960)
    # the last periods computed (local-time arithmetic is the costly part): most lookups hit one of them;
    # (lo, hi, start, end): times in [lo, hi) belong to the period [start, end) (lo > start for 12mo only)
    _recent: list[tuple[float, float, float, float]] = field(
        default_factory=list, compare=False, hash=False, repr=False
    )

    @property
    def calendar(self) -> bool:
        """True for month, year and 12mo: summed from day periods (CalendarSum), not per segment."""
        return self.name in CALENDAR_WINDOWS

    def bounds(self, t: float) -> tuple[float, float]:
        """The period ``[start, end)`` holding ``t`` (for 12mo: the one whose last month holds ``t``)."""
        for lo, hi, start, end in self._recent:
            if lo <= t < hi:
                return start, end
        lo, start, end = self._compute(t)
        self._recent.insert(0, (lo, end, start, end))
        del self._recent[4:]
        return start, end

    def anchor(self, t: float) -> float:
        """Where the step holding ``t`` starts: the period's start, or for 12mo the start of its last month. A
        period ending at ``e`` is followed by ``bounds(e)``, whose anchor is ``e``."""
        for lo, hi, _, _ in self._recent:
            if lo <= t < hi:
                return lo
        self.bounds(t)
        return self._recent[0][0]

    def starting_at(self, start: float) -> tuple[float, float]:
        """The period that starts at ``start`` (a period start given by ``bounds``)."""
        if self.name != "12mo":
            return self.bounds(start)
        zone = ZoneInfo(self.tz)
        first = datetime.fromtimestamp(start, zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return self.bounds(_ts(_add_months(first, 11), zone))

    def _compute(self, t: float) -> tuple[float, float, float]:
        """(lo, start, end): the period holding ``t`` and where the times mapping to it begin."""
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(t, zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.name == "day":
            return _ts(midnight, zone), _ts(midnight, zone), _ts(midnight + timedelta(days=1), zone)
        if self.name in CALENDAR_WINDOWS:
            first = midnight.replace(day=1)
            nxt = _ts(_add_months(first, 1), zone)
            if self.name == "month":
                return _ts(first, zone), _ts(first, zone), nxt
            if self.name == "year":
                jan = first.replace(month=1)
                return _ts(jan, zone), _ts(jan, zone), _ts(jan.replace(year=jan.year + 1), zone)
            return _ts(first, zone), _ts(_add_months(first, -11), zone), nxt
        if self.name == "shift":
            return self._shift_bounds(t, midnight, zone)
        seconds = fixed_seconds(self.name)
        if seconds is None:
            raise ValueError(check_window_name(self.name))
        day_start = _ts(midnight, zone)
        day_end = _ts(midnight + timedelta(days=1), zone)
        start = day_start + (t - day_start) // seconds * seconds
        return start, start, min(start + seconds, day_end)

    def _shift_bounds(self, t: float, midnight: datetime, zone: ZoneInfo) -> tuple[float, float, float]:
        edges = [_ts(midnight + timedelta(days=d, minutes=m), zone) for d in (-1, 0, 1) for m in self.shift_starts]
        start = max(e for e in edges if e <= t)
        end = min(e for e in edges if e > t)
        return start, start, end


def _add_months(first: datetime, n: int) -> datetime:
    """The first of the month ``n`` months after ``first`` (a first of a month, local midnight)."""
    index = first.year * 12 + first.month - 1 + n
    return first.replace(year=index // 12, month=index % 12 + 1, day=1)


def _ts(local: datetime, zone: ZoneInfo) -> float:
    """UNIX time of a naive-in-zone wall time (re-attached so DST offsets are right)."""
    return local.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC).timestamp()


@dataclass(slots=True)
class Bucket:
    start: float
    end: float
    amount: float = 0.0
    covered_s: float = 0.0
    # time bridged by a counter delta longer than counter_bridge_max_s (an outage the counter's readings bracket):
    # exact amount, not covered; calendar windows count it as covered. The first and last outage's bounds.
    bridged_s: float = 0.0
    bridge_t0: float = math.inf
    bridge_t1: float = -math.inf
    seeded: int = 0  # calendar sums: months in it seeded from a history file (agent.kpi.history), not measured

    def bridge(self, t0: float, t1: float, seconds: float) -> None:
        self.bridged_s += seconds
        self.bridge_t0 = min(self.bridge_t0, t0)
        self.bridge_t1 = max(self.bridge_t1, t1)

    def merge(self, other: Bucket) -> None:
        self.amount += other.amount
        self.covered_s += other.covered_s
        self.seeded += other.seeded
        if other.bridged_s > 0:
            self.bridge(other.bridge_t0, other.bridge_t1, other.bridged_s)


@dataclass(slots=True)
class WindowedSum:
    """Per-period sums of one input's segments for one window spec."""

    spec: WindowSpec
    settle_s: float = 120.0
    watermark: float = float("-inf")  # end of the newest segment seen
    final_until: float = float("-inf")  # periods ending at or before this are final
    late: float = 0.0  # amount that arrived for periods already final
    ledger: MonthLedger | None = None  # day sums only: where their final periods are folded for calendar windows
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
                elif seg.exact:
                    b.bridge(seg.t0, seg.t1, part)
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

    def finalize(self, now: float, unreported_from: float = float("inf")) -> None:
        """Close every period that can no longer change: data past its end, or ``settle_s`` after its end. Closed
        periods are dropped a while later, but not those ending after ``unreported_from`` (a backlog of periods
        the engine has yet to report)."""
        self.final_until = max(self.final_until, self.watermark, now - self.settle_s)
        for start in [s for s, b in self._open.items() if b.end <= self.final_until]:
            b = self._closed[start] = self._open.pop(start)
            if self.ledger is not None:
                self.ledger.fold(b)
        horizon = min(self._prev_finalize - self.settle_s, unreported_from)
        for start in [s for s, b in self._closed.items() if b.end < horizon]:
            del self._closed[start]
        if self._cur is not None and self._cur.end <= self.final_until:
            self._cur = None
        self._prev_finalize = now

    def get(self, start: float) -> Bucket | None:
        """The period starting at ``start``, open or final, if any data reached it."""
        return self._open.get(start) or self._closed.get(start)

    def open_buckets(self) -> list[Bucket]:
        """The periods not final yet."""
        return list(self._open.values())

    def dump(self) -> dict[str, object]:
        """The state as JSON-ready data (see agent.kpi.state)."""
        return {
            "watermark": _num(self.watermark),
            "final_until": _num(self.final_until),
            "late": self.late,
            "open": [_bucket(b) for b in self._open.values()],
            "closed": [_bucket(b) for b in self._closed.values()],
        }

    def load(self, data: dict[str, object]) -> None:
        """Restore what ``dump`` gave. Raises KeyError, TypeError or ValueError on malformed data."""
        self.watermark = _inf(data["watermark"])
        self.final_until = _inf(data["final_until"])
        self.late = float(data["late"])  # type: ignore[arg-type]  # reason: checked by float()
        self._open = {b.start: b for b in map(_unbucket, _rows(data["open"]))}
        self._closed = {b.start: b for b in map(_unbucket, _rows(data["closed"]))}
        self._cur = None
        self._prev_finalize = float("-inf")


@dataclass(slots=True)
class MonthLedger:
    """The final day periods of one input folded into local calendar months, newest ``LEDGER_MONTHS`` kept."""

    months: WindowSpec  # a "month" spec in the engine's zone
    buckets: dict[float, Bucket] = field(default_factory=dict)
    seeded: set[float] = field(default_factory=set)  # starts of the months seeded from a history file

    def seed(self, start: float, amount: float) -> bool:
        """The month starting at ``start`` holds ``amount``, seeded (not measured; whole month covered). A month
        this input measured is kept, and False returned; seeding it again replaces the seeded amount."""
        start, end = self.months.bounds(start)
        if start in self.buckets and start not in self.seeded:
            return False
        self.buckets[start] = Bucket(start, end, amount, end - start, seeded=1)
        self.seeded.add(start)
        while len(self.buckets) > LEDGER_MONTHS:
            oldest = min(self.buckets)
            del self.buckets[oldest]
            self.seeded.discard(oldest)
        return True

    def fold(self, day: Bucket) -> None:
        start, end = self.months.bounds(day.start)
        m = self.buckets.get(start)
        if m is None:
            m = self.buckets[start] = Bucket(start, end)
            if len(self.buckets) > LEDGER_MONTHS:
                del self.buckets[min(self.buckets)]
        m.merge(day)

    def dump(self) -> list[list[float]]:
        return [_bucket(b) for b in self.buckets.values()]

    def load(self, rows: object, seeded: object = ()) -> None:
        self.buckets = {b.start: b for b in map(_unbucket, _rows(rows))}
        self.seeded = {float(s) for s in seeded if float(s) in self.buckets}  # type: ignore[attr-defined]  # reason: checked by float()
        for s in self.seeded:
            self.buckets[s].seeded = 1


@dataclass(slots=True)
class CalendarSum:
    """Month, year or rolling-12-month sums of one input: the months of its ledger plus its open days. Reading a
    period costs at most 12 months and the few open days; adding a segment costs nothing here."""

    spec: WindowSpec
    days: WindowedSum

    @property
    def final_until(self) -> float:
        return self.days.final_until

    def get(self, start: float) -> Bucket | None:
        """The period starting at ``start``, or None when no data reached it. Time a counter's readings bracket
        (``bridged_s``) counts as covered here: the month's or year's totals are exact."""
        assert self.days.ledger is not None
        start, end = self.spec.starting_at(start)
        out: Bucket | None = None
        for b in (*self.days.ledger.buckets.values(), *self.days.open_buckets()):
            if start <= b.start < end:
                out = out or Bucket(start, end)
                out.merge(b)
                out.covered_s += b.bridged_s
        return out

    def short_months(self, start: float, share: float) -> list[float]:
        """Starts of the months of the period starting at ``start`` covered less than ``share`` (absent months
        included), bridged time counting as covered."""
        assert self.days.ledger is not None
        start, end = self.spec.starting_at(start)
        months = self.days.ledger.months
        covered: dict[float, float] = {}
        for b in (*self.days.ledger.buckets.values(), *self.days.open_buckets()):
            if start <= b.start < end:
                m = months.bounds(b.start)[0]
                covered[m] = covered.get(m, 0.0) + b.covered_s + b.bridged_s
        out: list[float] = []
        t = start
        while t < end:
            m0, m1 = months.bounds(t)
            if covered.get(m0, 0.0) < share * (m1 - m0):
                out.append(m0)
            t = m1
        return out


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _inf(x: object) -> float:
    return float("-inf") if x is None else float(x)  # type: ignore[arg-type]  # reason: checked by float()


def _bucket(b: Bucket) -> list[float]:
    if b.bridged_s > 0:
        return [b.start, b.end, b.amount, b.covered_s, b.bridged_s, b.bridge_t0, b.bridge_t1]
    return [b.start, b.end, b.amount, b.covered_s]


def _rows(rows: object) -> list[list[float]]:
    if not isinstance(rows, list):
        raise TypeError(f"expected a list of buckets, got {type(rows).__name__}")
    return rows


def _unbucket(row: list[float]) -> Bucket:
    """A bucket of 4 numbers (start, end, amount, covered) or 7 (and bridged seconds, the outage's bounds)."""
    if len(row) not in (4, 7):
        raise ValueError(f"bad bucket {row!r}")
    nums = [float(x) for x in row]
    if not all(math.isfinite(x) for x in nums) or nums[1] <= nums[0]:
        raise ValueError(f"bad bucket {row!r}")
    b = Bucket(nums[0], nums[1], nums[2], nums[3])
    if len(nums) == 7:
        b.bridged_s, b.bridge_t0, b.bridge_t1 = nums[4], nums[5], nums[6]
    return b
