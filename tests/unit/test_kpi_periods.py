"""Grades over calendar periods (issue 18, periods): an annual grade needs the whole year, and an outage the
counters bracket keeps a month's exact totals covered. Counters read hourly (within counter_bridge_max_s, so the
readings themselves are covered), evaluated daily; Asia/Shanghai.

The line: clinker at 100 t/h, raw coal 14 t/h (x 714.3 = 10,000.2 kgce/h), electricity 5,000 kWh/h
(x 0.1229 = 614.5 kgce/h): (10,000.2 + 614.5) / 100 = 106.147 kgce/t, between the benchmark 100 and the baseline
117 of cement_clinker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import Grade, KpiValue, Quality, Role, Sample

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0
PER_T = (14.0 * 714.3 + 5000.0 * 0.1229) / 100.0  # 106.147 kgce/t
RATES = {("k", Role.PRODUCTION_T): 100.0, ("f", Role.COAL_T): 14.0, ("m", Role.ENERGY_IMPORT_KWH): 5000.0}


def at(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=SH).timestamp()


def clinker(grade_windows: list[str], **section: Any) -> KpiEngine:
    line = {
        "name": "kiln",
        "indicator": "cement_clinker",
        "production": [{"device": "k", "role": "production_t"}],
        "electricity": [{"device": "m", "role": "energy_import_kwh"}],
        "fuels": [{"device": "f", "role": "coal_t", "carrier": "raw_coal"}],
        "grade_windows": grade_windows,
    }
    cfg = KpiSectionConfig.model_validate({"windows": ["day"], "emit_running": False, "lines": [line]} | section)
    devices = {d: DeviceInfo(d) for d, _ in RATES}
    return KpiEngine(cfg, devices, "Asia/Shanghai", lambda: at(2026, 1, 1))


def hourly(t0: float, t1: float, skip: tuple[float, float] | None = None) -> Iterator[tuple[float, list[Sample]]]:
    """Counter readings every hour from t0 to t1 (counters start at 100 on 2026-01-01), none inside ``skip``."""
    start = at(2026, 1, 1)
    t = t0
    while t <= t1:
        if skip is None or not skip[0] < t < skip[1]:
            h = (t - start) / HOUR
            yield (
                t,
                [Sample(d, r.value, 100.0 + rate * h, "", Quality.GOOD, t, role=r) for (d, r), rate in RATES.items()],
            )
        t += HOUR


def run(eng: KpiEngine, stream: Iterator[tuple[float, list[Sample]]], until: float) -> list[KpiValue]:
    out: list[KpiValue] = []
    next_eval = float("-inf")
    for t, samples in stream:
        eng.ingest(samples)
        if t >= next_eval:
            out += eng.evaluate(t)
            next_eval = t + 86400.0
    return out + eng.evaluate(until)


def graded(values: list[KpiValue], window: str) -> KpiValue:
    return next(v for v in values if v.name == "energy_kgce_per_t" and v.window == window and v.final)


def test_a_year_of_eleven_months_is_not_graded_and_names_the_missing_month() -> None:
    """The agent started on 1 February 2026: the year 2026 has 334 of 365 days of data, coverage 0.915 >= the
    section's coverage_min 0.9, so the old code published 106.147 kgce/t good and graded "between". An annual
    grade needs 99 % of the year: the value is still published, without a grade, its reason naming 2026-01."""
    eng = clinker(["year"])
    out = run(eng, hourly(at(2026, 2, 1), at(2027, 1, 1)), at(2027, 1, 1) + 86400)
    year = graded(out, "year")
    assert year.value == pytest.approx(PER_T, rel=1e-6)
    assert year.coverage == pytest.approx(334 / 365, abs=1e-3)
    assert year.grade is None
    assert "not graded: the year is 91.5 % covered, an annual grade needs 99 %" in year.reason
    assert year.reason.endswith("months missing: 2026-01")


def test_the_annual_coverage_is_configurable() -> None:
    """With annual_grade_coverage_min 0.9 the same year (0.915) is graded between again."""
    eng = clinker(["year"], annual_grade_coverage_min=0.9)
    year = graded(run(eng, hourly(at(2026, 2, 1), at(2027, 1, 1)), at(2027, 1, 1) + 86400), "year")
    assert year.grade is Grade.BETWEEN and year.reason == ""


def test_a_month_with_a_bracketed_four_day_outage_keeps_its_exact_totals_and_its_grade() -> None:
    """January 2026 with the gateway down from 10 January 00:00 to 14 January 00:00: the counters' readings on
    either side bracket the outage, so the month's totals are exact (106.147 kgce/t). The old code counted the
    96 h as not covered: coverage (744 - 96) / 744 = 0.871 < 0.9, uncertain, no grade and no reason. Time bridged
    by two good counter readings counts as covered in calendar windows: coverage 1.0, graded between, the reason
    "exact totals, outage 2026-01-10 00:00-2026-01-14 00:00". The day windows of the outage stay uncovered."""
    eng = clinker(["month"])
    outage = (at(2026, 1, 10), at(2026, 1, 14))
    out = run(eng, hourly(at(2026, 1, 1), at(2026, 2, 1, 1), skip=outage), at(2026, 2, 2))
    month = graded(out, "month")
    assert month.value == pytest.approx(PER_T, rel=1e-6)
    assert month.coverage == pytest.approx(1.0) and month.quality is Quality.GOOD
    assert month.grade is Grade.BETWEEN
    assert month.reason == "exact totals, outage 2026-01-10 00:00-2026-01-14 00:00"
    day = next(
        v for v in out if v.name == "energy_kgce_per_t" and v.window == "day" and v.window_start == at(2026, 1, 11)
    )
    assert day.coverage == 0.0


# --- history seeding ------------------------------------------------------------------------------------------------

HISTORY = """\
# past monthly totals of the kiln line, from the plant's monthly energy report
month,production,electricity_kwh,raw_coal
""" + "".join(
    f"2025-{m:02d},{100.0 * h:.1f},{5000.0 * h:.1f},{14.0 * h:.1f}\n"
    for m, h in ((m, (at(2025 + m // 12, m % 12 + 1, 1) - at(2025, m, 1)) / HOUR) for m in range(1, 13))
)


def test_a_seeded_history_gives_12mo_and_year_grades_from_the_first_month_marked_as_seeded() -> None:
    """The agent starts on 1 January 2026 with the line's 2025 monthly totals seeded from a CSV (each month at the
    same 100 t/h, 14 t/h of coal and 5,000 kWh/h, e.g. January 744 h: 74,400 t, 3,720,000 kWh, 10,416 t of coal).
    After January 2026 (measured) the rolling 12 months Feb 2025 - Jan 2026 are 11 seeded months and one measured:
    106.147 kgce/t, covered, graded between, ``detail.seeded_months`` 11 and the reason saying so. The old code had
    no history (the 12mo value covered 1 month of 12). The calendar month of January 2026 is measured: not marked.
    Seeding again (a restart) keeps the months, and a measured month is never overwritten."""
    from agent.kpi.history import parse_history

    eng = clinker(["month", "12mo"])
    line = eng.seed_history("kiln", parse_history(HISTORY, "history.csv"), "history.csv")
    assert line == "kpi: line kiln: 12 month(s) seeded from history.csv, 0 kept as measured"
    out = run(eng, hourly(at(2026, 1, 1), at(2026, 2, 1, 1)), at(2026, 2, 2))
    twelve = graded(out, "12mo")
    assert twelve.window_start == at(2025, 2, 1)
    assert twelve.value == pytest.approx(PER_T, rel=1e-6) and twelve.coverage == pytest.approx(1.0, abs=1e-3)
    assert twelve.grade is Grade.BETWEEN
    assert twelve.detail["seeded_months"] == 11.0
    assert "11 month(s) seeded from the line's history file, not measured by this agent" in twelve.reason
    month = graded(out, "month")
    assert "seeded_months" not in month.detail and "seeded" not in month.reason
    again = eng.seed_history("kiln", parse_history(HISTORY, "history.csv"), "history.csv")
    assert again == "kpi: line kiln: 12 month(s) seeded from history.csv, 0 kept as measured"


def test_a_history_file_that_does_not_fit_the_line_is_refused_with_row_and_column() -> None:
    from agent.kpi.history import HistoryError, parse_history

    eng = clinker(["12mo"])
    with pytest.raises(HistoryError, match=r"h.csv: row 3, column raw_coal: 'x' is not a number"):
        parse_history("month,production,raw_coal\n2025-01,1,2\n2025-02,1,x\n", "h.csv")
    with pytest.raises(HistoryError, match=r"column 'natural_gas': line 'kiln' has no such input"):
        eng.seed_history("kiln", parse_history("month,natural_gas\n2025-01,5\n", "h.csv"), "h.csv")
    with pytest.raises(HistoryError, match=r"month 2026-01 has not ended before the agent started"):
        eng.seed_history("kiln", parse_history("month,production\n2026-01,5\n", "h.csv"), "h.csv")
