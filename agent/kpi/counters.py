"""Turn readings into segments of energy (or mass, volume, time-weighted value) over an interval.

Every input of the KPI engine becomes a stream of :class:`Segment` ``(t0, t1, amount, covered)``: the amount of a
quantity attributed to the interval ``[t0, t1]``. Three trackers produce them, one per kind of point:

- :class:`CounterTracker`: cumulative counters (kWh, t, m3). Deltas with rollover at the register width, meter
  reset or replacement confirmed by a second reading, implausible jumps rejected by a maximum rate, duplicate and
  out-of-order readings ignored. Energy is never negative and never counted twice.
- :class:`RateIntegrator`: a rate (kW, t/h, m3/h) integrated over time with the trapezoid rule; a gap longer than
  ``max_gap_s`` is a gap (no segment), not bridged.
- :class:`LevelIntegrator`: an instantaneous value (power factor, pressure) as its time integral, so windows can
  take time-weighted means.

All trackers are pure and O(1) per reading. A reading is ``(ts, value)``; callers pass good readings only.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Segment:
    """``amount`` of a quantity attributed uniformly to ``[t0, t1]``. ``covered`` says whether the interval counts
    as good data for coverage (a counter delta across a long outage is counted but not covered)."""

    t0: float
    t1: float
    amount: float
    covered: bool = True
    exact: bool = False  # a counter delta between two good readings: its amount is exact even when not covered


@dataclass(slots=True)
class CounterStats:
    """What a tracker saw, for the KPI detail and for tests."""

    accepted: int = 0
    duplicates: int = 0  # same or older timestamp than the last accepted reading
    invalid: int = 0  # NaN, inf
    wraps: int = 0
    resets: int = 0  # confirmed resets or meter replacements
    glitches: int = 0  # a single implausible reading, ignored
    rejected_jumps: int = 0  # increments over the maximum rate
    lost: int = 0  # rebases where the amount around a reset could not be estimated (counted as 0)
    estimated: int = 0  # resets where the amount between the readings around it was estimated from the rate
    estimated_amount: float = 0.0  # the total of those estimates


@dataclass(slots=True)
class CounterTracker:
    """Deltas of one cumulative counter.

    ``modulus`` is where the counter wraps in engineering units (2**bits * scale), or None for counters that never
    wrap (floats, 64-bit). ``max_rate_per_h`` is the largest plausible increase per hour; increments above it are
    not counted. ``bridge_max_s`` is the longest interval a delta is counted as covered (the amount is always
    counted: the counter is the authority on totals).

    A backward step (or a jump over the maximum rate) is not trusted at once: it starts a *chain* of readings that
    continue from it. If a reading continues from the old value instead, the chain was a glitch (e.g. a meter
    answering 0 for a poll or two while it restarts) and is dropped. Once ``confirm`` readings form the chain, the
    meter was reset or replaced. The amount between the last reading before and the first after is then unknown
    (the meter's value at the reset was never read): it is estimated as the mean of the rates just before and just
    after times the interval, at least the first value after when that is plausible as the amount since a reset to
    zero (``stats.estimated``). Without a rate, or over an interval longer than ``bridge_max_s``, that first value
    alone is counted if plausible, else nothing (``stats.lost``). The chain's own steps are then counted.
    """

    modulus: float | None = None
    max_rate_per_h: float | None = None
    bridge_max_s: float = 3600.0
    stats: CounterStats = field(default_factory=CounterStats)
    _last_ts: float | None = None
    _last_value: float = 0.0
    confirm: int = 3  # readings that must form a chain after a backward step before it is taken as a reset
    _chain: list[tuple[float, float]] = field(default_factory=list)  # the backward reading and those continuing it
    _alt: list[tuple[float, float]] = field(default_factory=list)  # the chain before an outlier broke it
    _rate: float | None = None  # amount per second of the last counted step

    @property
    def last_ts(self) -> float | None:
        return self._last_ts

    def update(self, ts: float, value: float) -> list[Segment]:
        if not math.isfinite(value) or not math.isfinite(ts):
            self.stats.invalid += 1
            return []
        newest = self._chain[-1][0] if self._chain else self._last_ts
        if newest is not None and ts <= newest:
            self.stats.duplicates += 1
            return []
        self.stats.accepted += 1
        if self._last_ts is None:
            self._last_ts, self._last_value = ts, value
            return []
        if self._chain:
            return self._follow_chain(ts, value)
        step, kind = self._forward_step(self._last_ts, self._last_value, ts, value)
        if step is not None:
            self._count(kind)
            return self._advance(ts, value, step)
        self._count(kind)
        self._chain = [(ts, value)]  # a backward step or a jump: the next readings decide
        return []

    @property
    def undecided(self) -> bool:
        """True while readings after a backward step or a jump wait for the decision (glitch or reset)."""
        return bool(self._chain)

    def _plausible(self, amount: float, dt: float) -> bool:
        return self.max_rate_per_h is None or amount <= self.max_rate_per_h * dt / 3600.0 + 1e-9

    def _forward_step(self, t0: float, v0: float, t1: float, v1: float) -> tuple[float | None, str]:
        """The increment from (t0, v0) to (t1, v1) if it is a plausible forward step (possibly over a wrap), with
        what it was: "step", "wrap", "jump" (over the maximum rate) or "back" (a backward step)."""
        delta = v1 - v0
        if delta < 0 and self.modulus is not None:
            wrapped = delta + self.modulus
            # a wrap goes from near the top to near the bottom: less than half the range in one step
            if 0 <= wrapped < self.modulus / 2 and self._plausible(wrapped, t1 - t0):
                return wrapped, "wrap"
            return None, "back"
        if delta < 0:
            return None, "back"
        if not self._plausible(delta, t1 - t0):
            return None, "jump"
        return delta, "step"

    def _count(self, kind: str) -> None:
        if kind == "wrap":
            self.stats.wraps += 1
        elif kind == "jump":
            self.stats.rejected_jumps += 1

    def _advance(self, ts: float, value: float, amount: float) -> list[Segment]:
        assert self._last_ts is not None
        seg = Segment(self._last_ts, ts, amount, covered=ts - self._last_ts <= self.bridge_max_s, exact=True)
        self._rate = amount / (ts - self._last_ts)
        self._last_ts, self._last_value = ts, value
        return [seg]

    def _follow_chain(self, ts: float, value: float) -> list[Segment]:
        assert self._last_ts is not None
        step, kind = self._forward_step(self._last_ts, self._last_value, ts, value)
        if step is not None:  # the chain was a glitch: continue from the old value
            self._count(kind)
            self.stats.glitches += 1
            self._chain, self._alt = [], []
            return self._advance(ts, value, step)
        if self._continues(self._chain, ts, value):
            self._chain.append((ts, value))
        elif self._alt and self._continues(self._alt, ts, value):  # the reading that broke the chain was a glitch
            self._chain, self._alt = [*self._alt, (ts, value)], []
        else:  # continues nothing: a new candidate, the old chain kept in case this one is the glitch
            self.stats.glitches += 1
            self._chain, self._alt = [(ts, value)], self._chain
            return []
        return self._rebase() if len(self._chain) >= self.confirm else []

    def dump(self, shift: float = 0.0) -> dict[str, object]:
        """The readings the next delta needs, times on the wall clock (steady time + ``shift``)."""
        return {
            "last": None if self._last_ts is None else [self._last_ts + shift, self._last_value],
            "chain": [[t + shift, v] for t, v in self._chain],
            "alt": [[t + shift, v] for t, v in self._alt],
            "rate": self._rate,
        }

    def load(self, data: dict[str, object], shift: float = 0.0) -> None:
        """Restore what ``dump`` gave (wall-clock times, made steady with ``- shift``). Raises on malformed data."""
        last = data["last"]
        if last is None:
            self._last_ts = None
        else:
            self._last_ts, self._last_value = _reading(last, shift)
        self._chain = [_reading(r, shift) for r in _list(data["chain"])]
        self._alt = [_reading(r, shift) for r in _list(data["alt"])]
        rate = data["rate"]
        self._rate = None if rate is None else _finite(rate)

    def forget_readings(self) -> None:
        """Start afresh from the next reading (the time of the readings held can no longer be trusted)."""
        self._last_ts, self._chain, self._alt, self._rate = None, [], [], None

    def _continues(self, chain: list[tuple[float, float]], ts: float, value: float) -> bool:
        c_ts, c_value = chain[-1]
        return self._forward_step(c_ts, c_value, ts, value)[0] is not None

    def _rebase(self) -> list[Segment]:
        """The chain is confirmed: count the interval before it (estimated) and its own steps."""
        assert self._last_ts is not None
        chain, self._chain, self._alt = self._chain, [], []
        self.stats.resets += 1
        steps: list[float] = []
        for (t0, v0), (t1, v1) in itertools.pairwise(chain):
            step, kind = self._forward_step(t0, v0, t1, v1)
            assert step is not None
            self._count(kind)
            steps.append(step)
        p_ts, p_value = chain[0]
        gap = p_ts - self._last_ts
        since_reset = p_value if p_value >= 0 and self._plausible(p_value, gap) else None
        rates = [r for r in (self._rate, steps[0] / (chain[1][0] - p_ts) if steps else None) if r is not None]
        out: list[Segment] = []
        if gap <= self.bridge_max_s and self._rate is not None:
            amount = max(sum(rates) / len(rates) * gap, since_reset or 0.0)
            self.stats.estimated += 1
            self.stats.estimated_amount += amount
            out.append(Segment(self._last_ts, p_ts, amount, covered=True))
        elif since_reset is not None:
            out.append(Segment(self._last_ts, p_ts, since_reset, covered=gap <= self.bridge_max_s))
        else:  # replaced by a meter that did not start at zero, after a long gap: the amount is unknown
            self.stats.lost += 1
            out.append(Segment(self._last_ts, p_ts, 0.0, covered=False))
        self._last_ts, self._last_value = p_ts, p_value
        for (t1, v1), step in zip(chain[1:], steps, strict=True):
            out.extend(self._advance(t1, v1, step))
        return out


@dataclass(slots=True)
class RateIntegrator:
    """Trapezoid integral of a rate given per hour (kW -> kWh, t/h -> t). ``per_s`` divides by 3600; a rate per
    minute (m3/min) uses ``per_s = 60``. Intervals longer than ``max_gap_s`` are gaps: nothing is bridged."""

    max_gap_s: float = 60.0
    per_s: float = 3600.0
    _last: tuple[float, float] | None = None
    gaps: int = 0
    duplicates: int = 0
    invalid: int = 0

    @property
    def last_ts(self) -> float | None:
        return None if self._last is None else self._last[0]

    def update(self, ts: float, value: float) -> list[Segment]:
        if not math.isfinite(value) or not math.isfinite(ts):
            self.invalid += 1
            return []
        last = self._last
        if last is not None and ts <= last[0]:
            self.duplicates += 1
            return []
        self._last = (ts, value)
        if last is None:
            return []
        dt = ts - last[0]
        if dt > self.max_gap_s:
            self.gaps += 1
            return []
        return [Segment(last[0], ts, (last[1] + value) / 2.0 * dt / self.per_s)]

    def dump(self, shift: float = 0.0) -> dict[str, object]:
        return {"last": None if self._last is None else [self._last[0] + shift, self._last[1]]}

    def load(self, data: dict[str, object], shift: float = 0.0) -> None:
        last = data["last"]
        self._last = None if last is None else _reading(last, shift)

    def forget_readings(self) -> None:
        self._last = None


@dataclass(slots=True)
class LevelIntegrator(RateIntegrator):
    """Time integral (value x seconds) of an instantaneous value, for time-weighted means: the rate integral with
    a divisor of 1. Each reading holds from the previous reading's time (trapezoid); gaps longer than
    ``max_gap_s`` are not bridged."""

    per_s: float = 1.0

    @property
    def last(self) -> tuple[float, float] | None:
        return self._last


def _finite(x: object) -> float:
    v = float(x)  # type: ignore[arg-type]  # reason: float() raises on what it cannot convert
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {x!r}")
    return v


def _list(x: object) -> list[object]:
    if not isinstance(x, list):
        raise TypeError(f"expected a list, got {type(x).__name__}")
    return x


def _reading(row: object, shift: float) -> tuple[float, float]:
    ts, value = _list(row)
    return _finite(ts) - shift, _finite(value)
