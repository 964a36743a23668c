"""Wall-clock steps as the KPI engine sees them: deltas between readings in steady time, windows on the wall clock.

Samples carry wall-clock times (``Sample.ts``, stamped by the sources). An NTP correction, or someone setting the
gateway's clock, makes that time jump. Taken as it is, a backward step of an hour makes every reading of the next
hour look older than the last one (ignored as out of order) and then puts the hour's energy into one second, or
drops it as a jump over ``max_rate_per_h``.

:class:`ClockWatch` compares the wall clock with the monotonic clock at every ``ingest`` (two clock reads per
poll, nothing per sample). When their difference moves by more than ``tolerance_s`` the wall clock stepped by that
much. Steps add up in :class:`~agent.kpi.channels.TimeFrame` ``.shift``; trackers get ``ts - shift`` ("steady
time", which advances like the monotonic clock), so the delta between two readings spans the time that really
passed and is checked against the maximum rate over that time. Each segment goes back on the wall clock
(``+ shift``) to find its windows: the energy of the interval across the step lands where the reading after the
step came. Windows stay wall-clock (local time) periods.

Every step is reported once (``notices``, for the runtime to log) and remembered (at most ``MAX_STEPS``, for
``KEEP_S``): a KPI value whose window holds the stepped span (the hour lived twice after a backward step, or
skipped by a forward one) counts that span as not covered and says so in ``reason``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.kpi.channels import TimeFrame
from agent.model import KpiValue, Quality

MAX_STEPS = 16
KEEP_S = 400 * 86400.0  # a year window and the rolling 12 months may still hold a step this old
GRADE_DETAIL = ("to_benchmark", "to_baseline")


def ungraded(v: KpiValue, **changes: object) -> KpiValue:
    """The value without its grade: no grade, no distance, no distances to the levels in ``detail``."""
    detail = {k: x for k, x in v.detail.items() if k not in GRADE_DETAIL}
    return replace(v, grade=None, distance=None, detail=detail, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ClockStep:
    at: float  # wall-clock time just after the step
    size_s: float  # positive: the clock jumped forward

    @property
    def span(self) -> tuple[float, float]:
        """The wall-clock interval skipped (forward) or lived twice (backward)."""
        before = self.at - self.size_s
        return (before, self.at) if self.size_s > 0 else (self.at, before)

    def text(self, tz: str) -> str:
        when = datetime.fromtimestamp(self.at - self.size_s, ZoneInfo(tz)).isoformat(timespec="seconds")
        way = "forward" if self.size_s > 0 else "back"
        return f"wall clock stepped {way} {abs(self.size_s):.0f} s at {when}"


@dataclass(slots=True)
class ClockWatch:
    frame: TimeFrame
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    tz: str = "UTC"
    tolerance_s: float = 2.0
    steps: list[ClockStep] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    steady_limit: float = float("inf")  # no sample can have been taken later than this, in steady time
    _offset: float | None = None
    _steady: float = float("-inf")  # steady time at the last check

    def check(self) -> None:
        """Compare the clocks once (per ingest): note a step, and where steady time is now."""
        wall = self.clock()
        offset = wall - self.monotonic()
        frame = self.frame
        if self._offset is not None and abs(offset - self._offset) > self.tolerance_s:
            step = ClockStep(wall, offset - self._offset)
            frame.previous, frame.since, frame.stepped = frame.shift, self._steady, True
            frame.shift += step.size_s
            self.note(step)
        self._offset = offset
        self._steady = wall - frame.shift
        self.steady_limit = self._steady + self.tolerance_s

    def note(self, step: ClockStep) -> None:
        self.steps.append(step)
        del self.steps[:-MAX_STEPS]
        self.notices.append(
            f"kpi: {step.text(self.tz)}; readings are timed with the monotonic clock, "
            "windows holding the stepped span are flagged"
        )

    def steady(self, ts: float) -> float:
        """A sample's time in steady time; one stamped just before a backward step would be in the future with the
        current shift: it is taken with the shift before it, and so are the segments up to it."""
        frame = self.frame
        u = ts - frame.shift
        if u <= self.steady_limit:
            return u
        u = ts - frame.previous
        frame.since = max(frame.since, u)
        return u

    def prune(self, now: float) -> None:
        self.steps = [s for s in self.steps if s.at > now - KEEP_S]

    def flag(self, v: KpiValue, coverage_min: float) -> KpiValue:
        """The value with the stepped spans inside its window taken as not covered, and the reason given."""
        lost = 0.0
        texts: list[str] = []
        for s in self.steps:
            lo, hi = s.span
            overlap = min(hi, v.window_end) - max(lo, v.window_start)
            if overlap > 0:
                lost += overlap
                texts.append(s.text(self.tz))
        if not texts:
            return v
        coverage = max(0.0, v.coverage - lost / (v.window_end - v.window_start))
        reason = "; ".join([*([v.reason] if v.reason else []), *texts])
        if v.quality is Quality.GOOD and coverage < coverage_min:
            return ungraded(v, coverage=coverage, quality=Quality.UNCERTAIN, reason=reason)
        return replace(v, coverage=coverage, reason=reason)

    def dump(self) -> list[list[float]]:
        return [[s.at, s.size_s] for s in self.steps]

    def load(self, rows: list[list[float]]) -> None:
        self.steps = [ClockStep(float(at), float(size)) for at, size in rows][-MAX_STEPS:]
