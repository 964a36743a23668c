"""Window bounds in local time (fixed blocks, shifts, day, month, DST) and per-window sums with finality."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from agent.kpi.channels import Channel
from agent.kpi.counters import CounterTracker, Segment
from agent.kpi.windows import LEDGER_MONTHS, WindowedSum, WindowSpec, check_window_name, parse_hhmm

SH = ZoneInfo("Asia/Shanghai")


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, tz: tzinfo = SH) -> float:
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


def test_year_and_rolling_12_months_are_local_calendar_periods() -> None:
    """15 March 2026, Shanghai: the year is [2026-01-01, 2027-01-01); the rolling 12 months are the 12 local months
    ending with March: [2025-04-01, 2026-04-01). The next 12-month period starts at its anchor, 2026-04-01, and is
    [2025-05-01, 2026-05-01)."""
    t = ts(2026, 3, 15, 10, 0)
    assert WindowSpec("year", "Asia/Shanghai").bounds(t) == (ts(2026, 1, 1), ts(2027, 1, 1))
    rolling = WindowSpec("12mo", "Asia/Shanghai")
    assert rolling.bounds(t) == (ts(2025, 4, 1), ts(2026, 4, 1))
    assert rolling.anchor(t) == ts(2026, 3, 1)
    assert rolling.bounds(ts(2026, 4, 1)) == (ts(2025, 5, 1), ts(2026, 5, 1))
    assert rolling.starting_at(ts(2025, 4, 1)) == (ts(2025, 4, 1), ts(2026, 4, 1))
    assert rolling.calendar and WindowSpec("year").calendar and not WindowSpec("day").calendar
    assert check_window_name("12mo") is None and check_window_name("year") is None
    assert check_window_name("12months") is not None and check_window_name("12m") is None  # 12 minutes


def test_calendar_windows_are_summed_from_day_periods_and_bounded() -> None:
    """A channel read in 1h and month windows: 10 units per day for 40 days from 2026-01-25 (UTC). January holds
    7 days (70 units), February 28 (280), March 5, of which 4 final (40) and the open 5th (10). Only the 1h and
    day sums take segments; the month ledger keeps at most LEDGER_MONTHS months."""
    ch = Channel("k", "d", "counter", CounterTracker(), settle_s=60)
    ch.use_window(WindowSpec("1h", "UTC"))
    ch.use_window(WindowSpec("month", "UTC"))
    ch.use_window(WindowSpec("12mo", "UTC"))
    assert [ws.spec.name for ws in ch._sum_list] == ["1h", "day"]
    t0 = ts(2026, 1, 25, tz=UTC)
    for d in range(40):
        ch.add(Segment(t0 + d * 86400, t0 + (d + 1) * 86400 - 1, 10.0))
        ch.finalize(t0 + (d + 1) * 86400 - 1, {})  # the day is final at its end (data reached it)
    month = ch.sums["month"]
    jan, feb, mar = (month.get(ts(2026, m, 1, tz=UTC)) for m in (1, 2, 3))
    assert jan is not None and feb is not None and mar is not None
    assert (jan.amount, feb.amount, mar.amount) == pytest.approx((70.0, 280.0, 50.0))
    assert feb.covered_s == pytest.approx(28 * 86399)
    rolling = ch.sums["12mo"].get(ts(2025, 4, 1, tz=UTC))
    assert rolling is not None and rolling.amount == pytest.approx(400.0)
    days = ch.sums["day"]
    assert isinstance(days, WindowedSum) and days.ledger is not None
    for m in range(40):  # three more years of one reading a month: the ledger stays bounded
        start = ts(2026 + (m + 3) // 12, (m + 3) % 12 + 1, 1, tz=UTC)
        ch.add(Segment(start, start + 3600, 1.0))
        ch.finalize(start + 86400, {})
    assert len(days.ledger.buckets) == LEDGER_MONTHS
