"""When each device is polled: wall-clock aligned slots, skipped (and counted) slots, capped exponential backoff.

Slots: a device with ``interval_s = i`` and phase ``p`` is polled at ``k * i + p`` in UNIX time
(next = ceil((now - p) / i) * i + p). The phase is stable per device (``device_phase_s``: a hash of its name, in
[0, i)), so a hundred devices with equal intervals are read spread over the interval instead of all at once
(``poll_phase: spread``, the default): no burst of replies queues behind another on the one event-loop thread.
``poll_phase: aligned`` gives every device phase 0 (the multiples of ``i``: readings line up across gateways).
Sample timestamps are the real read times either way. A poll that overruns one or more slots does not cause a
burst of catch-up polls: the missed slots are skipped and counted.

Backoff: after ``BACKOFF_AFTER`` consecutive failed polls (no reply at all) the device is polled only every
``2**k`` slots (k = 1, 2, ...), capped at ``BACKOFF_CAP_S`` (or one interval, if longer), so a dead device on a
shared bus costs at most one timeout per backoff period and never starves the others. Slots skipped by backoff are
counted separately (``backoff_skipped``), not as missed, and still yield a result: every point bad, "backing off:
<last failure>" (``ModbusSource.run``).

Clock steps: if the wall clock is set back, a slot can lie far in the future; a source re-aligns a device whose
next slot is more than one interval ahead of now (``realign``) instead of waiting out the step.

The clock is injected (``Clock``): tests use a virtual clock whose ``sleep_until`` returns at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

BACKOFF_AFTER = 3
BACKOFF_CAP_S = 300.0


class Clock(Protocol):
    def now(self) -> float:
        """UNIX time in seconds (UTC)."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t``."""
        ...


class SystemClock:
    """The wall clock. Sleeps in steps of at most ``MAX_SLEEP_S`` so a clock step (NTP, a gateway whose RTC was
    wrong at boot) is noticed within a second instead of oversleeping. The sources that share a clock and sleep
    until the same instant share one timer, so they wake in the same event-loop turn: a poll step's devices send
    their requests together and their polls reach one group commit (a timer of its own each, rounded to the
    millisecond from a slightly different now, could wake them a millisecond apart, in two wake-ups)."""

    MAX_SLEEP_S = 1.0
    EARLY_S = 0.001  # timers have millisecond resolution (uvloop): closer than this is "now", not a spin of wake-ups

    def __init__(self) -> None:
        self._sleepers: dict[float, list[asyncio.Future[None]]] = {}  # by the instant they wait for

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        while (delay := t - time.time()) > self.EARLY_S:  # re-read after each wake: the wall clock may have stepped
            if delay > self.MAX_SLEEP_S:
                await asyncio.sleep(self.MAX_SLEEP_S)
                continue
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            sleepers = self._sleepers.get(t)
            if sleepers is None:
                sleepers = self._sleepers[t] = []
                loop.call_later(delay, self._wake, t)
            sleepers.append(waiter)
            await waiter  # one's own future: a cancelled sleeper leaves the others asleep

    def _wake(self, t: float) -> None:
        for waiter in self._sleepers.pop(t, ()):
            if not waiter.done():
                waiter.set_result(None)


AUTO_STEP_DEVICES = 20  # poll_phase_step_ms: auto keeps about this many devices in a step


def auto_step_s(interval_s: float, devices: int, per_step: int = AUTO_STEP_DEVICES) -> float:
    """``poll_phase_step_ms: auto``: the interval split into as many steps as keep about ``per_step`` of the
    ``devices`` polled at that interval in each (the interval itself, one step, for up to ``per_step``). A step's
    wake-up, transaction and publish are shared by its devices; its last device waits for the others."""
    return interval_s / max(1, math.ceil(devices / per_step))


def poll_steps(step_ms: float | Literal["auto"], intervals: Iterable[float]) -> Callable[[float], float]:
    """The poll step in seconds of the devices at an interval: the site's ``poll_phase_step_ms``, or for ``auto``
    (``auto_step_s``) from how many devices are polled at that interval (``intervals``: one per device)."""
    if step_ms != "auto":
        fixed = float(step_ms) / 1000.0
        return lambda _interval_s: fixed
    count = Counter(intervals)
    return lambda interval_s: auto_step_s(interval_s, count[interval_s])


def device_phase_s(name: str, interval_s: float, step_s: float = 0.0) -> float:
    """The device's stable offset in [0, interval_s): the same for the same name on every start and gateway; a
    multiple of ``step_s`` when that is > 0 (devices that share a step are polled together, in one wake-up); 0 when
    the step is not shorter than the interval."""
    if step_s >= interval_s:
        return 0.0  # one step per interval: every device in it together
    h = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")
    phase = h / 2.0**64 * interval_s
    return math.floor(phase / step_s) * step_s if step_s > 0 else phase


def first_slot(now: float, interval_s: float, phase_s: float = 0.0) -> float:
    return math.ceil((now - phase_s) / interval_s) * interval_s + phase_s


@dataclass(frozen=True, slots=True)
class NextSlot:
    at: float
    missed: int  # slots that passed while polling (overrun)
    backoff_skipped: int  # slots deliberately left out by backoff


def next_slot(
    previous: float, now: float, interval_s: float, consecutive_failures: int, phase_s: float = 0.0
) -> NextSlot:
    """The slot after ``previous`` (the slot just polled) given the poll finished at ``now``."""
    earliest = first_slot(now, interval_s, phase_s)
    if earliest <= previous:
        earliest = previous + interval_s
    missed = max(0, round((earliest - previous) / interval_s) - 1)
    if consecutive_failures < BACKOFF_AFTER:
        return NextSlot(earliest, missed, 0)
    delay = min(interval_s * 2 ** (consecutive_failures - BACKOFF_AFTER + 1), max(BACKOFF_CAP_S, interval_s))
    at = max(earliest, first_slot(previous + delay, interval_s, phase_s))
    skipped = max(0, round((at - earliest) / interval_s))
    return NextSlot(at, missed, skipped)


# A wake-up may come this much before its slot (SystemClock.EARLY_S: 1 ms): a poll that finished before the slot it
# was for puts the next slot up to one interval *and this* ahead, which is no clock step. A clock set back by less
# than this is waited out.
WAKE_MARGIN_S = 0.05


def realign(slot: float, now: float, interval_s: float, consecutive_failures: int, phase_s: float = 0.0) -> float:
    """The slot to wait for: ``slot``, unless it is further from now than the device's schedule can put it (one
    interval, or its current backoff period plus one, plus ``WAKE_MARGIN_S``): then the clock was set back, and the
    first slot from now is taken instead of waiting out the step. Without the margin, a device woken a fraction of
    a millisecond early and polled at once was polled a second time in the same slot."""
    horizon = interval_s + WAKE_MARGIN_S
    if consecutive_failures >= BACKOFF_AFTER:
        horizon += min(interval_s * 2 ** (consecutive_failures - BACKOFF_AFTER + 1), max(BACKOFF_CAP_S, interval_s))
    return slot if slot - now <= horizon else first_slot(now, interval_s, phase_s)
