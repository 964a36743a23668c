"""Inputs of the KPI engine: one :class:`Channel` per referenced point (or derived quantity), with its window sums.

A channel turns good readings into segments (``agent.kpi.counters``) and adds each segment to one
:class:`~agent.kpi.windows.WindowedSum` per window it is used in. A :class:`Term` is a weighted sum of channels as
a KPI sees it: the window total (kWh, t, kgce) or the time-weighted mean (kW, MPa).

Derived channels (heat output of a boiler, hydraulic power of a pump, transformer losses) compute a rate from the
device's latest readings whenever their trigger point is read, and integrate it like any rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agent.kpi.counters import CounterTracker, LevelIntegrator, RateIntegrator, Segment
from agent.kpi.windows import Bucket, CalendarSum, MonthLedger, WindowedSum, WindowSpec

Tracker = CounterTracker | RateIntegrator | LevelIntegrator


@dataclass(slots=True)
class TimeFrame:
    """How far the wall clock stepped since the engine started (seconds, summed over detected steps). Trackers get
    ``ts - shift`` (steady time: deltas between readings as the monotonic clock measured them); their segments
    are put back on the wall clock (``+ shift``) to find their windows, those ending by ``since`` (readings taken
    before the last step) with the shift before it. One per engine, shared by its channels."""

    shift: float = 0.0
    previous: float = 0.0
    since: float = float("-inf")
    stepped: bool = False

    def wall(self, seg: Segment) -> float:
        """What to add to the segment's steady times."""
        return self.shift if seg.t1 > self.since else self.previous


@dataclass(slots=True)
class Channel:
    """One input quantity. ``kind`` is counter, rate (value per hour) or level (instantaneous).
    ``scale`` multiplies amounts into the KPI's unit; ``key`` identifies it (device/selector/kind/scale)."""

    key: str
    device: str
    kind: str
    tracker: Tracker
    scale: float = 1.0
    settle_s: float = 120.0
    sums: dict[str, WindowedSum | CalendarSum] = field(default_factory=dict)
    point: str | None = None  # the device point bound on the first reading (a role may match several)
    counter_bits: int | None = None  # declared register width of a counter (else the profile's data type)
    frame: TimeFrame = field(default_factory=TimeFrame)
    _sum_list: list[WindowedSum] = field(default_factory=list)

    def use_window(self, spec: WindowSpec) -> None:
        if spec.name in self.sums:
            return
        if spec.calendar:  # built from the day sums: nothing more to do per segment
            self.use_window(WindowSpec("day", spec.tz, spec.shift_starts))
            days = self.sums["day"]
            assert isinstance(days, WindowedSum)
            if days.ledger is None:
                days.ledger = MonthLedger(WindowSpec("month", spec.tz, spec.shift_starts))
            self.sums[spec.name] = CalendarSum(spec, days)
            return
        ws = WindowedSum(spec, settle_s=self.settle_s)
        self.sums[spec.name] = ws
        self._sum_list.append(ws)

    def feed(self, ts: float, value: float) -> None:
        """One good reading; ``ts`` is steady time (see TimeFrame)."""
        for seg in self.tracker.update(ts, value):
            self.add(seg)

    def add(self, seg: Segment) -> None:
        if self.scale != 1.0 or self.frame.stepped:
            shift = self.frame.wall(seg)
            seg = Segment(seg.t0 + shift, seg.t1 + shift, seg.amount * self.scale, seg.covered)
        for ws in self._sum_list:
            ws.add(seg)

    def finalize(self, now: float, unreported_from: Mapping[str, float]) -> None:
        """``unreported_from``: per window, where the oldest period still to be reported begins."""
        for ws in self._sum_list:
            ws.finalize(now, unreported_from.get(ws.spec.name, float("inf")))

    def dump(self) -> dict[str, object]:
        """The channel's state as JSON-ready data (agent.kpi.state); tracker times on the wall clock."""
        days = self.sums.get("day")
        ledger = days.ledger if isinstance(days, WindowedSum) else None
        return {
            "point": self.point,
            "tracker": self.tracker.dump(self.frame.shift),
            "sums": {ws.spec.name: ws.dump() for ws in self._sum_list},
            "months": ledger.dump() if ledger is not None else [],
            "seeded": sorted(ledger.seeded) if ledger is not None else [],
        }

    def load(self, data: dict[str, object], windows: bool = True) -> list[str]:
        """Restore what ``dump`` gave: the tracker always, the window sums when ``windows`` (their periods are
        unchanged). Returns the names of the sums restored. Raises KeyError, TypeError or ValueError."""
        point = data.get("point")
        self.point = str(point) if point is not None and self.point is None else self.point
        tracker = data["tracker"]
        if not isinstance(tracker, dict):
            raise TypeError("tracker state is not a mapping")
        self.tracker.load(tracker, self.frame.shift)
        restored: list[str] = []
        sums = data["sums"]
        if not windows or not isinstance(sums, dict):
            return restored
        for name, ws in self.sums.items():
            state = sums.get(name)
            if isinstance(ws, WindowedSum) and isinstance(state, dict):
                ws.load(state)
                restored.append(name)
                if ws.ledger is not None:
                    ws.ledger.load(data["months"], data.get("seeded") or [])
        return restored

    @property
    def mean_factor(self) -> float:
        """amount / covered seconds x this = the time-weighted mean: per hour for rates (integrated per hour) and
        counters (their mean rate per hour, e.g. m3/h from an m3 counter), as is for levels."""
        return 1.0 if self.kind == "level" else 3600.0


@dataclass(slots=True)
class DerivedChannel(Channel):
    """A rate computed from the latest readings of some points of one device, integrated over time."""

    inputs: tuple[str, ...] = ()  # selectors of the device's points, e.g. "role:steam_flow_tph"
    fn: Callable[[Sequence[float]], float | None] | None = None
    max_age_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TermValue:
    value: float
    covered_s: float  # the least covered input
    present: bool  # False when no input had any data in the period
    bridged_s: float = 0.0  # calendar windows: outage time a counter's readings bracket (counted in covered_s)
    bridge: tuple[float, float] | None = None  # the first and last such outage's bounds
    seeded: int = 0  # calendar windows: months of the period seeded from a history file (the most of any input)


@dataclass(slots=True)
class Term:
    """Weighted sum over channels, of their window totals (``mean=False``) or time-weighted means."""

    parts: list[tuple[Channel, float]]
    mean: bool = False

    def at(self, window: str, start: float) -> TermValue:
        total = 0.0
        covered = float("inf")
        present = False
        bridged = 0.0
        seeded = 0
        t0, t1 = float("inf"), float("-inf")
        for ch, weight in self.parts:
            b: Bucket | None = ch.sums[window].get(start)
            if b is None:
                covered = 0.0
                continue
            present = present or b.covered_s > 0 or b.amount != 0.0
            covered = min(covered, b.covered_s)
            seeded = max(seeded, b.seeded)
            if b.bridged_s > 0:
                bridged = max(bridged, b.bridged_s)
                t0, t1 = min(t0, b.bridge_t0), max(t1, b.bridge_t1)
            if self.mean:
                if b.covered_s > 0:
                    total += weight * b.amount / b.covered_s * ch.mean_factor
            else:
                total += weight * b.amount
        bridge = (t0, t1) if bridged > 0 else None
        return TermValue(total, 0.0 if covered == float("inf") else covered, present, bridged, bridge, seeded)

    def short_months(self, window: str, start: float, share: float) -> list[float]:
        """Calendar windows: starts of the months any input covers less than ``share`` of (see CalendarSum)."""
        out: set[float] = set()
        for ch, _ in self.parts:
            s = ch.sums[window]
            if isinstance(s, CalendarSum):
                out.update(s.short_months(start, share))
        return sorted(out)

    def final_until(self, window: str) -> float:
        return min((ch.sums[window].final_until for ch, _ in self.parts), default=float("inf"))

    def channels(self) -> list[Channel]:
        return [ch for ch, _ in self.parts]
