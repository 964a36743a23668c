"""Window bounds in local time (fixed blocks, shifts, day, month, DST) and per-window sums with finality."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agent.kpi.counters import Segment
from agent.kpi.windows import WindowedSum, WindowSpec, check_window_name, parse_hhmm

SH = ZoneInfo("Asia/Shanghai")


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, tz: ZoneInfo = SH) -> float:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()


def test_fixed_blocks_align_to_local_midnight() -> None:
    t = ts(2026, 3, 5, 10, 7, 30)
    assert WindowSpec("15m", "Asia/Shanghai").bounds(t) == (ts(2026, 3, 5, 10, 0), ts(2026, 3, 5, 10, 15))
    assert WindowSpec("8h", "Asia/Shanghai").bounds(t) == (ts(2026, 3, 5, 8, 0), ts(2026, 3, 5, 16, 0))


def test_shifts_cross_midnight() -> None:
    spec = WindowSpec("shift", "Asia/Shanghai", (parse_hhmm("08:00"), parse_hhmm("20:00")))
    assert spec.bounds(ts(2026, 3, 5, 2, 0)) == (ts(2026, 3, 4, 20, 0), ts(2026, 3, 5, 8, 0))
    assert spec.bounds(ts(2026, 3, 5, 8, 0)) == (ts(2026, 3, 5, 8, 0), ts(2026, 3, 5, 20, 0))


def test_day_and_month_are_local_calendar_periods() -> None:
    t = ts(2026, 2, 28, 23, 59)
    assert WindowSpec("day", "Asia/Shanghai").bounds(t) == (ts(2026, 2, 28, 0, 0), ts(2026, 3, 1, 0, 0))
    assert WindowSpec("month", "Asia/Shanghai").bounds(t) == (ts(2026, 2, 1, 0, 0), ts(2026, 3, 1, 0, 0))


def test_dst_day_is_23_hours_long() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start, end = WindowSpec("day", "Europe/Berlin").bounds(ts(2026, 3, 29, 12, 0, tz=berlin))
    assert end - start == 23 * 3600


@pytest.mark.parametrize(("name", "ok"), [("15m", True), ("1h", True), ("day", True), ("7m", False), ("2d", False)])
def test_window_names_are_checked(name: str, ok: bool) -> None:
    assert (check_window_name(name) is None) is ok


def test_segment_across_a_boundary_is_split_in_proportion_to_time() -> None:
    ws = WindowedSum(WindowSpec("15m", "UTC"), settle_s=60)
    ws.add(Segment(890.0, 910.0, 20.0))
    b0, b1 = ws.get(0.0), ws.get(900.0)
    assert b0 is not None and b1 is not None
    assert (b0.amount, b1.amount) == pytest.approx((10.0, 10.0))
    assert (b0.covered_s, b1.covered_s) == pytest.approx((10.0, 10.0))


def test_period_is_final_when_data_passed_its_end_or_after_settle() -> None:
    ws = WindowedSum(WindowSpec("15m", "UTC"), settle_s=60)
    ws.add(Segment(800.0, 850.0, 5.0))
    ws.finalize(now=905.0)
    assert ws.final_until == 850.0  # the 0..900 period waits for data past 900 or for 960
    ws.finalize(now=961.0)
    assert ws.final_until >= 900.0
    ws.add(Segment(850.0, 910.0, 6.0))  # late: the part before 900 is not added to a published period
    b0 = ws.get(0.0)
    assert b0 is not None and b0.amount == pytest.approx(5.0)
    assert ws.late == pytest.approx(5.0)
