"""Running values are provisional and measured against the whole window (issue 12); grades against the national
levels, which are annual figures, are issued on month, year and rolling-12-month windows and marked indicative
on shorter ones (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.center.schema import kpi_lines
from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import Grade, KpiValue, Quality, Role, Sample
from agent.wire import KpiMessage, decode, encode_kpis
from tests.unit.kpi_drive import drive

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=SH).timestamp()
# a site's own levels, so that the line (101.58 kgce/t) is at benchmark: the grade issue 12 saw on 54 s of data
LEVELS = [{"indicator": "cement_clinker", "benchmark": 110, "baseline": 120, "edition": "2021", "standard": "test"}]
LINE: dict[str, Any] = {
    "name": "l1",
    "indicator": "cement_clinker",
    "production": [{"device": "k", "role": "production_t"}],
    "electricity": [{"device": "m", "role": "energy_import_kwh"}],
    "fuels": [{"device": "k", "role": "coal_t", "carrier": "raw_coal"}],
}


def engine(section: dict[str, Any], t0: float = T0) -> KpiEngine:
    cfg = KpiSectionConfig.model_validate({"settle_s": 30, "levels": LEVELS} | section)
    return KpiEngine(cfg, {"m": DeviceInfo("m"), "k": DeviceInfo("k")}, "Asia/Shanghai", lambda: t0)


def readings(t0: float, seconds: int, step: int) -> Iterator[tuple[float, list[Sample]]]:
    """3600 kWh/h, 36 t/h clinker, 4.5 t/h coal: 100 kWh/t and 101.58 kgce/t (12.29 + 89.29)."""
    for k in range(0, seconds + 1, step):
        t = t0 + k
        yield (
            t,
            [
                Sample("m", "e", 1000.0 + k, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                Sample("k", "p", 50.0 + 0.01 * k, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
                Sample("k", "c", 9.0 + 0.00125 * k, "t", Quality.GOOD, t, role=Role.COAL_T),
            ],
        )


def pick(values: list[KpiValue], name: str, window: str, final: bool) -> list[KpiValue]:
    return [v for v in values if v.name == name and v.window == window and v.final is final]


def test_54_seconds_of_a_quarter_hour_are_6_percent_coverage_provisional_and_ungraded() -> None:
    """Readings every 2 s from 08:00:00 to 08:00:54: 54 s covered of the 900 s window, coverage 54/900 = 0.06, not
    54/54 = 1.0. Below coverage_min 0.9 the value is uncertain and carries no grade, and it is marked provisional
    (final False). Production so far: 36 t/h x 54 s = 0.54 t."""
    eng = engine({"windows": ["15m"], "lines": [LINE]})
    for _, samples in readings(T0, 54, 2):
        eng.ingest(samples)
    out = eng.evaluate(T0 + 54)
    kgce = pick(out, "energy_kgce_per_t", "15m", final=False)[0]
    assert kgce.coverage == pytest.approx(0.06)
    assert kgce.quality is Quality.UNCERTAIN and kgce.grade is None and not kgce.final
    assert kgce.value == pytest.approx(101.5775)  # the value so far is there, flagged
    prod = pick(out, "production", "15m", final=False)[0]
    assert prod.value == pytest.approx(0.54) and prod.coverage == pytest.approx(0.06)
    assert all(not v.final for v in out)


def test_a_running_value_reads_good_only_once_the_whole_window_is_covered_enough() -> None:
    """At 08:13:30 (810 s) coverage is 810/900 = 0.9 = coverage_min: good, still provisional; at 08:13:00 it is
    780/900 = 0.867: uncertain."""
    eng = engine({"windows": ["15m"], "lines": [LINE]})
    out = drive(eng, readings(T0, 810, 2), every=30)
    prod = {v.ts - T0: v for v in pick(out, "production", "15m", final=False)}
    assert prod[780].coverage == pytest.approx(780 / 900) and prod[780].quality is Quality.UNCERTAIN
    assert prod[810].coverage == pytest.approx(0.9) and prod[810].quality is Quality.GOOD and not prod[810].final


def test_grades_of_windows_shorter_than_the_grading_periods_are_indicative_or_left_out() -> None:
    """A whole quarter hour at 101.58 kgce/t against benchmark 110: the final 15m value is at benchmark, and the
    grade is marked indicative (15m is not among the grading windows month, year, 12mo). With shorter_grades:
    none it carries no grade at all; the value and its quality are the same."""
    out = drive(engine({"windows": ["15m"], "lines": [LINE]}), readings(T0, 960, 2), every=60)
    q = pick(out, "energy_kgce_per_t", "15m", final=True)[0]
    assert q.quality is Quality.GOOD and q.grade is Grade.BENCHMARK and q.grade_indicative
    assert q.distance == pytest.approx(101.5775 - 110)
    line = LINE | {"shorter_grades": "none"}
    out = drive(engine({"windows": ["15m"], "lines": [line]}), readings(T0, 960, 2), every=60)
    q2 = pick(out, "energy_kgce_per_t", "15m", final=True)[0]
    assert q2.quality is Quality.GOOD and q2.grade is None and q2.distance is None
    assert "to_benchmark" in q.detail and "to_benchmark" not in q2.detail and "to_baseline" not in q2.detail
    assert q2.value == pytest.approx(q.value or 0.0)


def test_a_whole_month_is_graded_as_such_and_the_year_waits_for_its_coverage() -> None:
    """February 2026 read every 10 min (counters bridge 600 s gaps as covered). The graded KPI is also computed
    in month, year and 12mo (the line's default grade_windows) though the section's windows are 1h and day. The
    final February value: 28 days covered of 28, 101.58 kgce/t, benchmark, not indicative. The running year
    holds 28 of 365 days (coverage 0.077): uncertain, no grade. Day finals are graded indicatively; other KPIs
    of the line (production) are not computed in the month."""
    feb = datetime(2026, 2, 1, tzinfo=SH).timestamp()
    eng = engine({"windows": ["1h", "day"], "lines": [LINE]}, t0=feb)
    out = drive(eng, readings(feb, 28 * 86400 + 3600, 600), every=3600)
    month = pick(out, "energy_kgce_per_t", "month", final=True)
    assert len(month) == 1 and month[0].window_start == feb
    assert month[0].coverage == pytest.approx(1.0) and month[0].quality is Quality.GOOD
    assert month[0].value == pytest.approx(101.5775)
    assert month[0].grade is Grade.BENCHMARK and not month[0].grade_indicative
    year = pick(out, "energy_kgce_per_t", "year", final=False)[-1]
    assert year.coverage == pytest.approx((28 * 86400 + 3600) / (365 * 86400), rel=1e-3)
    assert year.quality is Quality.UNCERTAIN and year.grade is None
    rolling = pick(out, "energy_kgce_per_t", "12mo", final=False)[-1]
    assert rolling.window_end == datetime(2026, 4, 1, tzinfo=SH).timestamp()  # March is the newest month
    days = pick(out, "energy_kgce_per_t", "day", final=True)
    assert len(days) == 28 and all(d.grade is Grade.BENCHMARK and d.grade_indicative for d in days)
    assert not pick(out, "production", "month", final=True)


def test_provisional_and_indicative_marks_reach_the_wire_and_the_centre() -> None:
    """The wire carries final, grade_indicative and reason; InfluxDB gets them as fields. A message of an agent
    before the final field (detail.final = 0) still reads as provisional."""
    out = drive(engine({"windows": ["15m"], "lines": [LINE]}), readings(T0, 960, 2), every=60)
    running = pick(out, "production", "15m", final=False)[0]
    graded = pick(out, "energy_kgce_per_t", "15m", final=True)[0]
    payload = encode_kpis(site="s", gateway="g", boot="b", seq=1, ts=T0, kpis=[running, graded])
    msg = decode(payload)
    assert isinstance(msg, KpiMessage)
    assert [k.final for k in msg.kpis] == [False, True]
    assert msg.kpis[1].grade is Grade.BENCHMARK and msg.kpis[1].grade_indicative
    lines = list(kpi_lines(msg, "s"))
    assert "final=f" in lines[0] and "grade_indicative" not in lines[0]
    assert "final=t" in lines[1] and "grade_indicative=t" in lines[1]
    old = payload.replace(b'"final":false,', b"")
    assert b'"final":false' not in old and b'"final":0.0' in old
    legacy = decode(old)
    assert isinstance(legacy, KpiMessage) and legacy.kpis[0].final is False and legacy.kpis[1].final is True
