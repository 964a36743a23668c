"""Self-monitoring figures the runtime keeps: event-loop lag, poll jitter and poll-to-spool latency.

Figures are kept in bounded rings so memory stays flat over months of running.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass


class Ring:
    """The last ``size`` observations, with percentiles on demand (O(n log n) when asked, O(1) to add)."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        ordered = sorted(self._values)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @staticmethod
    def of(ring: Ring) -> Percentiles:
        return Percentiles(ring.percentile(50), ring.percentile(95), ring.percentile(99), ring.percentile(100))


class LoopLagMonitor:
    """Measures how late the event loop wakes a sleeper: a blocked loop shows as lag."""

    def __init__(self, period_s: float = 0.25) -> None:
        self.period_s = period_s
        self.lag = Ring()
        self.last_tick = time.monotonic()

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(self.period_s)
            now = time.monotonic()
            self.lag.add(max(0.0, now - start - self.period_s))
            self.last_tick = now


def poll_jitter_s(poll_start: float, interval_s: float) -> float:
    """How far a poll started from its wall-clock-aligned slot (polls are aligned to multiples of the interval)."""
    offset = poll_start % interval_s
    return offset if offset <= interval_s / 2 else offset - interval_s
