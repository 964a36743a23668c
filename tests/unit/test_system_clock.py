"""SystemClock: the sources that sleep until the same instant wake in one event-loop turn, on one timer; a cancelled
sleeper leaves the others asleep; a later instant waits for its own timer."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.sources.modbus.schedule import SystemClock


async def test_sleepers_of_one_instant_wake_in_the_same_turn_on_one_timer() -> None:
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    t = time.time() + 0.05
    turns: list[int] = []
    turn = 0

    def count() -> None:  # a turn counter: one tick per pass of the loop's ready queue
        nonlocal turn
        turn += 1
        loop.call_soon(count)

    loop.call_soon(count)
    timers: list[float] = []
    real_call_later = loop.call_later

    def call_later(delay: float, *args: object) -> asyncio.TimerHandle:
        timers.append(delay)
        return real_call_later(delay, *args)  # type: ignore[arg-type]

    loop.call_later = call_later  # type: ignore[method-assign,assignment]
    try:

        async def sleeper(k: int) -> None:
            await asyncio.sleep(k * 0.003)  # each starts from its own now, a few ms apart
            await clock.sleep_until(t)
            turns.append(turn)
            assert time.time() >= t - SystemClock.EARLY_S

        await asyncio.gather(*(sleeper(k) for k in range(5)))
    finally:
        loop.call_later = real_call_later  # type: ignore[method-assign]
    assert len(set(turns)) == 1, turns
    assert len([d for d in timers if d > 0.02]) == 1, timers  # the shared timer (the others are the staggers)


async def test_a_cancelled_sleeper_leaves_the_others_asleep_until_the_instant() -> None:
    clock = SystemClock()
    t = time.time() + 0.05
    first = asyncio.ensure_future(clock.sleep_until(t))
    second = asyncio.ensure_future(clock.sleep_until(t))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled() and not second.done()
    await second
    assert time.time() >= t - SystemClock.EARLY_S


async def test_a_later_instant_is_not_woken_by_an_earlier_one() -> None:
    clock = SystemClock()
    now = time.time()
    early = asyncio.ensure_future(clock.sleep_until(now + 0.02))
    late = asyncio.ensure_future(clock.sleep_until(now + 0.08))
    await early
    assert not late.done()
    await late
    assert time.time() >= now + 0.08 - SystemClock.EARLY_S


async def test_the_loop_lag_probe_wakes_on_the_polls_timer_at_whole_periods() -> None:
    from agent.runtime.monitor import LoopLagMonitor

    clock = SystemClock()
    probe = LoopLagMonitor(0.2, clock)
    task = asyncio.ensure_future(probe.run())
    try:
        await asyncio.sleep(0)  # the probe goes to sleep on the clock
        (instant,) = clock._sleepers
        while instant - time.time() < 0.05:  # too close to join it from here: take the next one
            await asyncio.sleep(instant - time.time() + 0.002)
            (instant,) = clock._sleepers
        assert instant / 0.2 == pytest.approx(round(instant / 0.2))  # a whole multiple of its period
        poll = asyncio.ensure_future(clock.sleep_until(instant))  # a device due then shares the timer
        await asyncio.sleep(0)
        assert list(clock._sleepers) == [instant] and len(clock._sleepers[instant]) == 2
        await poll
        await asyncio.sleep(0.45)  # two more whole periods: their timers come before this one
        assert len(probe.lag) >= 2 and max(probe.lag.last(len(probe.lag))) < 0.15  # lateness, not the period
    finally:
        task.cancel()
