"""Self-monitoring the runtime keeps: event-loop lag, poll jitter and poll-to-spool latency (in bounded rings, so
memory stays flat over months of running), what the systemd watchdog vouches for (``Liveness``) and the one-line
status for ``systemctl status``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent.model import DeviceHealth


class Ring:
    """The last ``size`` observations, with percentiles on demand (O(n log n) when asked, O(1) to add)."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def last(self, n: int) -> list[float]:
        """The newest ``n`` observations (fewer when fewer were made), oldest first."""
        return list(self._values)[-n:] if n > 0 else []

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
    """Measures how late the event loop wakes a sleeper: a blocked loop shows as lag. Given the polls' wall clock
    (``wall``, agent.sources.modbus.schedule.SystemClock) it wakes at whole multiples of ``period_s`` on that clock,
    on the timer of the polls due then (whole seconds: the devices of the first poll step), so it costs no wake-up
    of its own while devices poll; otherwise every ``period_s`` on a timer of its own."""

    def __init__(self, period_s: float = 0.25, wall: WallSleeper | None = None) -> None:
        self.period_s = period_s
        self.lag = Ring()
        self.last_tick = time.monotonic()
        self._wall = wall

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            if self._wall is None:
                await asyncio.sleep(self.period_s)
                now = time.monotonic()
                self.lag.add(max(0.0, now - start - self.period_s))
            else:
                wall0 = time.time()
                target = (math.floor(wall0 / self.period_s) + 1) * self.period_s
                await self._wall.sleep_until(target)
                now = time.monotonic()
                elapsed = now - start
                if abs(time.time() - wall0 - elapsed) < 0.1:  # not across a step of the wall clock
                    self.lag.add(max(0.0, elapsed - (target - wall0)))
            self.last_tick = now


class WallSleeper(Protocol):
    async def sleep_until(self, t: float) -> None:
        """Return once the wall clock (time.time) reads ``t``."""
        ...


def poll_jitter_s(poll_start: float, interval_s: float) -> float:
    """How far a poll started from its wall-clock-aligned slot (polls are aligned to multiples of the interval)."""
    offset = poll_start % interval_s
    return offset if offset <= interval_s / 2 else offset - interval_s


class Liveness:
    """What the systemd watchdog vouches for: the agent itself is alive, whatever the plant does.

    Alive means: the event loop runs its timers (the loop-lag monitor ticked lately), the long-running tasks of
    the pipeline have not ended, and a publisher with a session and a backlog gets something published or
    acknowledged. Devices that do not answer, or poll once a minute, are no reason to be restarted: they are
    reported per device, not by the watchdog. ``check`` returns None when alive, else the reason in one sentence.
    """

    def __init__(
        self, loop_lag: LoopLagMonitor, stall_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.loop_lag = loop_lag
        self.stall_s = stall_s
        self._monotonic = monotonic
        self._publisher_progress: tuple[int, ...] = ()
        self._publisher_progress_at = monotonic()

    def check(
        self, tasks: Mapping[str, asyncio.Task[None]], spool_depth: int, sink: Mapping[str, Any] | None
    ) -> str | None:
        now = self._monotonic()
        silent = now - self.loop_lag.last_tick
        if silent > self.stall_s:
            return f"the event loop ran no timer for {silent:.1f} s"
        for name, task in tasks.items():
            if task.done():
                return f"the {name} task has ended"
        if sink is None:
            return None
        progress = (int(sink.get("published", 0)), int(sink.get("acked", 0)))
        if progress != self._publisher_progress or not sink.get("connected") or spool_depth == 0:
            self._publisher_progress = progress
            self._publisher_progress_at = now
            return None
        stalled = now - self._publisher_progress_at
        if stalled > self.stall_s:
            return (
                f"the publisher has a broker session and {spool_depth} spooled messages but published and "
                f"acknowledged nothing for {stalled:.0f} s"
            )
        return None


def status_line(devices: Sequence[DeviceHealth], spool_depth: int, sink: Mapping[str, Any] | None) -> str:
    """One line for ``systemctl status`` (sd_notify STATUS=)."""
    failing = sum(1 for h in devices if h.state == "failed")
    polling = sum(1 for h in devices if h.state != "disabled")
    broker = (
        "no broker configured" if sink is None else ("broker connected" if sink.get("connected") else "broker down")
    )
    return f"polling {polling} devices, {failing} failing, spool depth {spool_depth}, {broker}"
