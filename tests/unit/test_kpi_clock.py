"""Wall-clock steps (issue 11): deltas between readings use the monotonic clock, windows use the wall clock, and a
step is logged once and flagged on the windows it touches. Injected clocks: real time ``r`` drives the monotonic
clock; the wall clock is T0 + r, stepped by an hour at r = 1800 s (08:30)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import KpiValue, Quality, Role, Sample

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=SH).timestamp()
SECTION: dict[str, Any] = {
    "windows": ["15m", "1h", "day"],
    "settle_s": 30,
    "lines": [
        {
            "name": "l1",
            "production": [{"device": "k", "role": "production_t"}],
            "electricity": [{"device": "m", "role": "energy_import_kwh", "max_rate_per_h": 4000}],
        }
    ],
}


class Clocks:
    def __init__(self) -> None:
        self.r = 0.0
        self.step_at = float("inf")
        self.step_s = 0.0

    def wall(self) -> float:
        return T0 + self.r + (self.step_s if self.r >= self.step_at else 0.0)

    def mono(self) -> float:
        return 5000.0 + self.r


def reading(ts: float, r: float) -> list[Sample]:
    """The meter at 3600 kWh/h (1 kWh per real second) and the kiln at 36 t/h, stamped ``ts`` (wall clock)."""
    return [
        Sample("m", "e", 1000.0 + r, "kWh", Quality.GOOD, ts, role=Role.ENERGY_IMPORT_KWH),
        Sample("k", "p", 50.0 + 0.01 * r, "t", Quality.GOOD, ts, role=Role.PRODUCTION_T),
    ]


def run(step_s: float, until_r: float, late_stamp: bool = False) -> tuple[KpiEngine, list[KpiValue], list[str]]:
    clocks = Clocks()
    clocks.step_at, clocks.step_s = 1800.0, step_s
    cfg = KpiSectionConfig.model_validate(SECTION)
    eng = KpiEngine(
        cfg, {"m": DeviceInfo("m"), "k": DeviceInfo("k")}, "Asia/Shanghai", clocks.wall, monotonic=clocks.mono
    )
    out: list[KpiValue] = []
    notices: list[str] = []
    r = 0.0
    while r <= until_r:
        clocks.r = r
        if late_stamp and r == 1800.0:  # a poll stamped at 08:29:59, just before the step, handed over after it
            eng.ingest(reading(T0 + 1799.0, 1799.0))
        eng.ingest(reading(clocks.wall(), r))
        if r % 60 == 0:
            out += eng.evaluate(clocks.wall())
            notices += eng.notices()
        r += 2.0
    return eng, out, notices


def value(out: list[KpiValue], window: str, start: float, final: bool = True) -> KpiValue:
    return [
        v
        for v in out
        if v.name == "electricity_kwh" and v.window == window and v.window_start == start and v.final is final
    ][-1]


def meter_stats(eng: KpiEngine) -> Any:
    return next(v for k, v in eng.counter_stats().items() if k.startswith("m|"))


def test_a_backward_step_of_an_hour_loses_no_reading_and_flags_the_hour_lived_twice() -> None:
    """Real time runs 7320 s; at 08:30 the wall clock goes back to 07:30. Every reading counts (no duplicates, no
    rejected jump, no reset): the day holds 7320 kWh, one per real second. 08:00-08:15 closed before the step:
    900 kWh, good. 08:15-08:30 was lived twice: 08:15:00-08:29:59 before the step (the last poll, stamped at
    08:29:59, was handed over after the step and is counted in its place: 899 kWh), the 1 kWh across the step
    goes where the reading after it came (07:29:59-07:30:00), and 900 kWh on the second pass: 1799 kWh; its whole
    span was stepped over, coverage 1 - 900/900 = 0, uncertain with the reason. The hour 08:00-09:00 holds
    1799 + 3600 = 5399 kWh; the stepped span 07:30-08:30 covers half of it: coverage 1 - 0.5, uncertain.
    08:30-08:45 is outside the span: 900 kWh, good. The step is logged once."""
    eng, out, notices = run(-3600.0, 7320.0, late_stamp=True)
    assert len(notices) == 1 and "stepped back 3600 s at 2026-01-01T08:30:00+08:00" in notices[0]
    stats = meter_stats(eng)
    assert (stats.duplicates, stats.rejected_jumps, stats.resets, stats.glitches) == (0, 0, 0, 0)
    assert value(out, "day", T0 - 8 * 3600, final=False).value == pytest.approx(7320.0)
    q0 = value(out, "15m", T0)
    assert q0.value == pytest.approx(900.0) and q0.quality is Quality.GOOD and q0.reason == ""
    q1 = value(out, "15m", T0 + 900)
    assert q1.value == pytest.approx(1799.0) and q1.coverage == 0.0 and q1.quality is Quality.UNCERTAIN
    assert "stepped back 3600 s" in q1.reason
    h = value(out, "1h", T0)
    assert h.value == pytest.approx(5399.0) and h.coverage == pytest.approx(0.5) and h.quality is Quality.UNCERTAIN
    assert "stepped back 3600 s" in h.reason
    q2 = value(out, "15m", T0 + 1800)
    assert q2.value == pytest.approx(900.0) and q2.quality is Quality.GOOD and q2.reason == ""


def test_a_forward_step_of_an_hour_leaves_the_skipped_hour_empty_and_flagged() -> None:
    """Real time runs 3720 s; at 08:30 the wall clock jumps to 09:30. The 2 kWh of the 2 s across the step go to
    09:29:58-09:30:00 (where the reading after the step came), not spread over the skipped hour as if it had been
    read: the quarter hours 08:30-09:15 have no data (bad, flagged), 09:15-09:30 only those 2 kWh (flagged).
    09:00-10:00 holds 1802 kWh over 1802 s,
    minus the skipped half hour: coverage 1802/3600 - 0.5, uncertain. The day holds 3720 kWh, one per real
    second; nothing was taken for a jump over max_rate_per_h."""
    eng, out, notices = run(3600.0, 3720.0)
    assert len(notices) == 1 and "stepped forward 3600 s at 2026-01-01T08:30:00+08:00" in notices[0]
    stats = meter_stats(eng)
    assert (stats.duplicates, stats.rejected_jumps, stats.resets) == (0, 0, 0)
    assert value(out, "day", T0 - 8 * 3600, final=False).value == pytest.approx(3720.0)
    for k in range(2, 5):
        q = value(out, "15m", T0 + 900 * k)
        assert q.value is None and q.quality is Quality.BAD and "stepped forward 3600 s" in q.reason
    q = value(out, "15m", T0 + 900 * 5)
    assert q.value == pytest.approx(2.0) and q.quality is Quality.UNCERTAIN and "stepped forward" in q.reason
    h = value(out, "1h", T0 + 3600)
    assert h.value == pytest.approx(1802.0) and h.coverage == pytest.approx(2 / 3600)
    assert h.quality is Quality.UNCERTAIN and "stepped forward" in h.reason
    assert value(out, "15m", T0 + 6 * 900).quality is Quality.GOOD  # 09:30-09:45: read all along


def test_a_correction_within_the_tolerance_is_not_a_step() -> None:
    """An NTP adjustment of 1.5 s (tolerance 2 s): nothing logged, nothing flagged."""
    eng, out, notices = run(1.5, 2000.0)
    assert notices == [] and all(v.reason == "" for v in out)
    assert meter_stats(eng).duplicates == 0
