"""The KPI engine's state over a restart (issue 13): snapshot, restore, config changes, corrupt snapshots, the
downtime's gap, and the snapshot file the runtime writes atomically."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.kpi.state import StateError, decode, encode
from agent.kpi.windows import LEDGER_MONTHS
from agent.model import KpiValue, Quality, Role, Sample
from agent.runtime.kpistate import KpiStateFile
from tests.unit.kpi_drive import drive

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=SH).timestamp()
LINE: dict[str, Any] = {
    "name": "l1",
    "production": [{"device": "k", "role": "production_t"}],
    "electricity": [{"device": "m", "role": "energy_import_kwh", "max_rate_per_h": 4000}],
}
DEMAND: dict[str, Any] = {"name": "site", "meters": [{"device": "m", "role": "energy_import_kwh"}], "windows": ["1h"]}


def engine(section: dict[str, Any] | None = None, t0: float = T0) -> KpiEngine:
    base: dict[str, Any] = {"windows": ["15m", "1h", "shift", "day", "month"], "settle_s": 30, "lines": [LINE]}
    cfg = KpiSectionConfig.model_validate(base | (section or {}))
    return KpiEngine(cfg, {"m": DeviceInfo("m"), "k": DeviceInfo("k")}, "Asia/Shanghai", lambda: t0)


def readings(a: float, b: float, step: float = 2.0, kwh_per_h: float = 3600.0) -> Iterator[tuple[float, list[Sample]]]:
    """kWh and clinker counters of a constant line (3600 kWh/h, 36 t/h), read every ``step`` s in [a, b]."""
    t = a
    while t <= b:
        k = t - T0
        yield (
            t,
            [
                Sample("m", "e", 1000.0 + kwh_per_h * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                Sample("k", "p", 50.0 + 0.01 * k, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
            ],
        )
        t += step


def restart(old: KpiEngine, saved_at: float, now: float, section: dict[str, Any] | None = None) -> KpiEngine:
    """A new engine (a new process) from the bytes the old one would have written at ``saved_at``."""
    new = engine(section, t0=now)
    new.restore(decode(encode(old.snapshot(saved_at))), now)
    return new


def final(values: list[KpiValue], name: str, window: str, start: float) -> KpiValue:
    [v] = [v for v in values if v.name == name and v.window == window and v.window_start == start and v.final]
    return v


def test_a_restart_mid_shift_keeps_the_shift_and_its_quarter_hour_whole() -> None:
    """Up 08:00-08:07:30, down 40 s, up again until 16:01. The counter delta across the 40 s downtime is bridged
    (<= counter_bridge_max_s), so the 08:00 quarter hour is whole: 900 kWh, coverage 1.0, good; the shift
    08:00-16:00 is 8 h x 3600 kWh/h = 28800 kWh, 36 t/h x 8 h = 288 t, 100 kWh/t, coverage 1.0. Without the
    snapshot the new engine would start its windows at 08:08:10 (the quarter hour at 410/900 coverage)."""
    first = engine()
    drive(first, readings(T0, T0 + 450))
    second = restart(first, T0 + 450, T0 + 490)
    out = drive(second, readings(T0 + 490, T0 + 8 * 3600 + 60))
    q = final(out, "electricity_kwh", "15m", T0)
    assert q.value == pytest.approx(900.0) and q.coverage == pytest.approx(1.0) and q.quality is Quality.GOOD
    shift = final(out, "electricity_kwh", "shift", T0)
    assert shift.value == pytest.approx(28800.0) and shift.coverage == pytest.approx(1.0)
    assert final(out, "production", "shift", T0).value == pytest.approx(288.0)
    assert final(out, "sec_kwh_per_t", "shift", T0).value == pytest.approx(100.0)
    fresh = drive(engine(t0=T0 + 490), readings(T0 + 490, T0 + 960))
    assert final(fresh, "electricity_kwh", "15m", T0).coverage == pytest.approx(410 / 900)


def test_a_long_downtime_is_a_gap_but_its_counted_energy_is_kept() -> None:
    """Down from 08:07:30 to 10:07:30 (2 h > counter_bridge_max_s 1 h). The delta across it, 7200 kWh in 2 h,
    is within max_rate_per_h 4000 and is spread over the downtime: each quarter hour inside it gets 900 kWh but
    no coverage (uncertain), and 08:00-08:15 has 450 s of readings + 450 s of the spread: 900 kWh, coverage 0.5.
    The periods of the downtime are final only once that delta arrived (the first evaluation after the restart
    comes before the first reading here). The backlog drains 4 periods per window per evaluation (a bounded KPI
    message), and every quarter hour from 08:00 to 10:30 is reported once."""
    first = engine()
    drive(first, readings(T0, T0 + 450))
    second = restart(first, T0 + 450, T0 + 7650)
    early = second.evaluate(T0 + 7650)  # before any reading: the downtime's periods wait for the delta
    assert not [v for v in early if v.final and v.window == "15m" and v.window_start >= T0]
    stream = readings(T0 + 7650, T0 + 3 * 3600)
    second.ingest(next(stream)[1])  # the delta across the downtime
    burst = second.evaluate(T0 + 7650)
    assert len([v for v in burst if v.name == "electricity_kwh" and v.window == "15m" and v.final]) == 4
    out = early + burst + drive(second, stream)
    q0 = final(out, "electricity_kwh", "15m", T0)
    assert q0.value == pytest.approx(900.0) and q0.coverage == pytest.approx(0.5) and q0.quality is Quality.UNCERTAIN
    q = final(out, "electricity_kwh", "15m", T0 + 3600)
    assert q.value == pytest.approx(900.0) and q.coverage == 0.0 and q.quality is Quality.UNCERTAIN
    starts = [v.window_start for v in out if v.name == "electricity_kwh" and v.window == "15m" and v.final]
    assert starts == [T0 + 900 * k for k in range(11)]


def test_a_delta_across_the_downtime_over_the_maximum_rate_is_not_counted_at_once() -> None:
    """The meter was exchanged while the agent was down: 1 h down, and the counter reads 50000 kWh more (far over
    4000 kWh/h x 1 h). The jump is not counted; the readings after it start a chain that, once confirmed (three
    readings), is taken as a reset, the interval across the downtime estimated from the rates before and after
    (3600 kWh/h x 1 h = 3600 kWh), never 50000."""
    first = engine({"windows": ["1h", "day"]})
    drive(first, readings(T0, T0 + 1800))
    second = restart(first, T0 + 1800, T0 + 5400, {"windows": ["1h", "day"]})
    for _, samples in readings(T0 + 5400, T0 + 7200):
        second.ingest([replace(s, value=float(s.value or 0.0) + 50000.0) if s.point == "e" else s for s in samples])
    out = second.evaluate(T0 + 7200)
    day = next(v for v in out if v.name == "electricity_kwh" and v.window == "day")
    assert day.value == pytest.approx(7200.0, rel=0.002)  # 2 h of 3600 kWh/h, within a reading
    stats = next(v for k, v in second.counter_stats().items() if k.startswith("m|"))
    assert getattr(stats, "rejected_jumps", 0) == 1 and getattr(stats, "resets", 0) == 1


def test_month_and_demand_maxima_survive_restarts() -> None:
    """Up 00:00-02:00 on 1 January, down until 00:00 on the 2nd, up again until 02:00, at 3600 kWh/h all along.
    The January month holds the 4 h read and the 22 h delta across the downtime (real energy, within
    max_rate_per_h): 26 h x 3600 = 93600 kWh. The counter's readings bracket the downtime, so the month (a calendar
    window, issue 18) counts those 22 h as covered too: 26 h, the reason "exact totals, outage 2026-01-01
    02:00-2026-01-02 00:00". The first day's maximum demand, 3600 kW, was kept in the snapshot and is reported when
    the day closes."""
    jan1 = datetime(2026, 1, 1, tzinfo=SH).timestamp()
    section = {"demand": [DEMAND | {"windows": ["day"]}]}
    first = engine(section, t0=jan1)
    drive(first, readings(jan1, jan1 + 7200))
    second = restart(first, jan1 + 7200, jan1 + 86400, section)
    out = drive(second, readings(jan1 + 86400, jan1 + 86400 + 7200))
    month = [v for v in out if v.name == "electricity_kwh" and v.window == "month"][-1]
    assert month.value == pytest.approx(93600.0) and month.detail["covered_s"] == pytest.approx(26 * 3600, abs=4)
    assert "exact totals, outage 2026-01-01 02:00-2026-01-02 00:00" in month.reason
    assert final(out, "max_demand_kw", "day", jan1).value == pytest.approx(3600.0)


def test_a_changed_kpi_config_keeps_what_still_fits() -> None:
    """The snapshot of a line; the new config adds a demand KPI (a third input: its meter reference has no
    max_rate_per_h) and a 30m window. The line's two inputs and its reported periods are kept: the quarter hour
    stays whole; the new 30m window starts at the restored reading (08:07:30), 1350 of 1800 s covered."""
    first = engine()
    drive(first, readings(T0, T0 + 450))
    section = {"demand": [DEMAND], "windows": ["15m", "1h", "shift", "day", "month", "30m"]}
    second = engine(section, t0=T0 + 470)
    line = second.restore(decode(encode(first.snapshot(T0 + 450))), T0 + 470)
    assert "restored: 2 of 3 inputs" in line and "KPI config changed" in line
    out = drive(second, readings(T0 + 470, T0 + 1900))
    assert final(out, "electricity_kwh", "15m", T0).coverage == pytest.approx(1.0)
    assert final(out, "electricity_kwh", "30m", T0).coverage == pytest.approx(1350 / 1800)


def test_another_time_zone_keeps_only_the_counter_readings() -> None:
    first = engine()
    drive(first, readings(T0, T0 + 450))
    cfg = KpiSectionConfig.model_validate({"windows": ["15m"], "settle_s": 30, "lines": [LINE]})
    second = KpiEngine(cfg, {"m": DeviceInfo("m"), "k": DeviceInfo("k")}, "Europe/Berlin", lambda: T0 + 470)
    line = second.restore(decode(encode(first.snapshot(T0 + 450))), T0 + 470)
    assert "only counter readings were kept" in line
    out = drive(second, readings(T0 + 470, T0 + 960))
    q = final(out, "electricity_kwh", "15m", T0)
    assert q.value == pytest.approx(900 - 450.0)  # from the restored reading at 08:07:30 on: no pre-restart sums


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a KPI state snapshot"),
        (b'{"format": "energy-agent-kpi-state", "version": 99}', "version 99"),
        (b'{"format": "energy-agent-kpi-state", "version": 1, "config": "x"}', "malformed snapshot"),
    ],
)
def test_unreadable_snapshots_are_state_errors(payload: bytes, why: str) -> None:
    with pytest.raises(StateError, match=why):
        engine().restore(decode(payload), T0)


def test_a_damaged_reading_inside_a_valid_snapshot_is_a_state_error() -> None:
    first = engine()
    drive(first, readings(T0, T0 + 60))
    snap: Any = decode(encode(first.snapshot(T0 + 60)))
    next(iter(snap["channels"].values()))["tracker"]["last"] = [T0, 1.0, 2.0]
    with pytest.raises(StateError, match="malformed snapshot: ValueError"):
        engine().restore(snap, T0 + 60)


def test_a_snapshot_from_the_future_keeps_windows_but_not_readings() -> None:
    """Saved at 08:07:30, restored at 07:00 (the clock went back over the restart): a reading at 07:00 continuing
    the counter would otherwise look older than the saved one and every reading until 08:07:30 would be dropped."""
    first = engine()
    drive(first, readings(T0, T0 + 450))
    second = engine(t0=T0 - 3600)
    line = second.restore(decode(encode(first.snapshot(T0 + 450))), T0 - 3600)
    assert "behind the snapshot" in line
    drive(second, readings(T0 - 3600, T0 - 3000))
    stats = next(iter(second.counter_stats().values()))
    assert getattr(stats, "duplicates", -1) == 0 and getattr(stats, "accepted", 0) == 301


def test_the_calendar_state_is_bounded() -> None:
    """Three years of one reading an hour: the snapshot holds at most LEDGER_MONTHS months per input and the open
    and recently closed periods, a few kilobytes, not three years of days."""
    jan1 = datetime(2026, 1, 1, tzinfo=SH).timestamp()
    eng = engine({"windows": ["day", "month", "year", "12mo"]}, t0=jan1)
    drive(eng, readings(jan1, jan1 + 3 * 365 * 86400, step=3600), every=86400)
    snap = eng.snapshot(jan1 + 3 * 365 * 86400)
    channels: dict[str, Any] = snap["channels"]  # type: ignore[assignment]
    assert all(len(c["months"]) <= LEDGER_MONTHS for c in channels.values())
    assert len(encode(snap)) < 20_000


def test_the_state_file_is_written_atomically_and_an_unusable_one_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    eng = engine()
    drive(eng, readings(T0, T0 + 450))
    state = KpiStateFile(tmp_path / "kpi-state.json")
    old = state.snapshot(eng, T0 + 440)
    state.save(state.snapshot(eng, T0 + 450))
    state.save(old)  # an older snapshot never replaces a newer one
    assert decode(state.path.read_bytes())["saved_at"] == T0 + 450  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kpi-state.json"]  # no temporary file left
    assert state.load_into(engine(t0=T0 + 460), T0 + 460)
    state.path.write_bytes(state.path.read_bytes()[:100])  # torn by hand: what a disk fault could leave
    with caplog.at_level(logging.INFO, logger="agent.runtime"):
        assert not state.load_into(engine(t0=T0 + 460), T0 + 460)
    [aside] = [p.name for p in tmp_path.iterdir()]
    assert aside == f"kpi-state.json.unusable-{int(T0 + 460)}"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unusable" in warnings[0] and "moved aside" in warnings[0]


def test_a_failing_save_is_logged_once_and_its_recovery_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    eng = engine()
    state = KpiStateFile(tmp_path / "gone" / "kpi-state.json")
    with caplog.at_level(logging.INFO, logger="agent.runtime"):
        for k in range(3):
            state.save(state.snapshot(eng, T0 + k))
        os.mkdir(tmp_path / "gone")
        state.save(state.snapshot(eng, T0 + 5))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "cannot save state" in lines[0] and "saved to" in lines[1] and "again" in lines[1]
    assert state.path.exists()
