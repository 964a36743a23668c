"""The account: quantities per carrier and period, both electricity methods, totals, products, quality, closing
with kept coefficients, and restatements that change that month and the year to date only."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.center.accounts.account import Ledger
from agent.center.accounts.entries import parse, store_entries
from agent.center.accounts.metered import quarters
from agent.center.accounts.periods import day, month
from agent.center.accounts.store import SCHEMA_VERSION, Store, StoreError, open_store
from agent.center.accounts.tables import data_file
from tests.unit.accounts_unit import NOV1, RATES, CounterSource, accounts_config

DAY = 86400.0


def ledger_for(tmp_path: Path, source: CounterSource, t1: float) -> Ledger:
    cfg = accounts_config(str(tmp_path))
    led = Ledger(cfg.units[0], open_store(tmp_path))
    led.refresh(source, NOV1 - 30 * DAY, t1)
    return led


def test_quarters_spread_increments_and_mark_long_silences() -> None:
    t0 = 0.0
    readings = [(0.0, 100.0), (300.0, 130.0), (2700.0, 370.0), (2760.0, 376.0)]  # 0.1/s, silent 300..2700
    rows = quarters(readings, t0, 2700.0, max_gap_s=300.0)
    assert [round(q, 6) for _s, q, _c in rows] == [90.0, 90.0, 90.0]
    assert [round(c, 3) for _s, _q, c in rows] == [0.333, 0.0, 0.0]


def test_a_counter_that_restarts_counts_its_new_reading() -> None:
    rows = quarters([(0.0, 900.0), (450.0, 945.0), (900.0, 40.0)], 0.0, 900.0, 300.0)
    assert rows[0][1] == pytest.approx(45.0 + 40.0)


def test_month_account_per_carrier_with_both_methods(tmp_path: Path) -> None:
    src = CounterSource()
    m = month("2026-11", ZoneInfo("Asia/Shanghai"))
    led = ledger_for(tmp_path, src, m.end)
    f = led.figures(m)
    by = {c["carrier"]: c for c in f["carriers"]}
    secs = m.end - m.start
    e = by["electricity"]
    assert e["purchased"] == pytest.approx(RATES["E-GRID"] * secs, rel=1e-9)
    assert e["exported"] == pytest.approx(RATES["E-EXP"] * secs, rel=1e-9)
    assert e["quantity"] == pytest.approx((RATES["E-GRID"] - RATES["E-EXP"]) * secs, rel=1e-9)
    assert e["kgce_equivalent"] == pytest.approx(e["quantity"] * 0.1229)
    assert e["kgce_equal_value"] == pytest.approx(e["quantity"] * 0.2957)
    assert e["co2_t"] == pytest.approx(e["quantity"] * 0.6479 / 1000)
    pv = by["pv"]
    assert pv["quantity"] == pytest.approx(RATES["E-PV"] * secs) and pv["co2_t"] == 0.0
    assert pv["kgce_equal_value"] == pytest.approx(pv["kgce_equivalent"])  # renewables: equivalent in both columns
    coal = by["raw_coal"]
    assert coal["quantity"] == pytest.approx(RATES["C-KILN"] * secs)
    assert coal["kgce_equivalent"] == pytest.approx(coal["quantity"] * 714.3)
    t = f["totals"]
    assert t["comprehensive_kgce_equivalent"] == pytest.approx(sum(c["kgce_equivalent"] for c in f["carriers"]))
    assert t["dual_control_kgce_equivalent"] == pytest.approx(
        t["comprehensive_kgce_equivalent"] - pv["kgce_equivalent"]
    )
    clinker = f["products"][0]
    assert clinker["output"] == pytest.approx(RATES["output:clinker"] * secs)
    assert clinker["kgce_per_unit"] == pytest.approx(t["comprehensive_kgce_equivalent"] / clinker["output"])
    # (9900 + 1000) kWh x 0.1229 + 3.6 t x 714.3 = 3911.2 kgce per 36 t: 108.6 kgce/t, between 100 and 117
    assert clinker["kgce_per_unit"] == pytest.approx(3911.2 / 36, rel=1e-4)
    assert clinker["grade"] == "between"
    assert f["quality"]["completeness"] == 1.0 and not f["quality"]["flagged"]
    assert f["provisional"] is True


def test_gaps_carry_the_cause_the_agents_published_and_flag_the_period(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    silent_from = NOV1 + 2 * DAY
    src = CounterSource(
        silent=[(k, silent_from, silent_from + 0.3 * DAY) for k in ("E-GRID", "E-EXP")],
        problems_at=[(silent_from + 60, "gateway gw1 offline")],
    )
    d = day("2026-11-03", zone)
    led = ledger_for(tmp_path, src, d.end)
    f = led.figures(d)
    el = next(c for c in f["carriers"] if c["carrier"] == "electricity")
    assert el["completeness"] == pytest.approx(1 - 0.3, abs=0.02)
    # counters are cumulative: the silence loses nothing of the day's total
    assert el["purchased"] == pytest.approx(RATES["E-GRID"] * DAY, rel=1e-9)
    assert f["quality"]["flagged"] and "completeness" in f["quality"]["reasons"][0]
    causes = {g["cause"] for g in f["quality"]["gaps"]}
    assert "gateway gw1 offline" in causes and "no data received" in causes


def test_entries_make_purchases_and_stock_change_of_an_unmetered_carrier(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    led = ledger_for(tmp_path, CounterSource(), NOV1 + 31 * DAY)
    text = (
        "kind,date,carrier,product,quantity,unit,amount_cny,who,note\n"
        "stock,2026-10-31,diesel,,20,t,,Li,\n"
        "delivery,2026-11-05,diesel,,30,t,,Li,ticket 1\n"
        "invoice,2026-11-20,diesel,,10,t,80000,Li,\n"
        "stock,2026-11-30,diesel,,25,t,,Li,\n"
        "delivery,2026-11-06,raw_coal,,5000,t,,Li,weighbridge\n"
    )
    store_entries(led.store, led.unit, parse(text, "e.csv", led.unit, led.store, dt.date(2026, 12, 5)), NOV1)
    f = led.figures(month("2026-11", zone))
    diesel = next(c for c in f["carriers"] if c["carrier"] == "diesel")
    assert (diesel["purchased"], diesel["stock_change"], diesel["quantity"]) == (40.0, 5.0, 35.0)
    assert diesel["metered_share"] == 0.0
    coal = next(c for c in f["carriers"] if c["carrier"] == "raw_coal")
    assert coal["purchased"] == 5000.0  # the weighbridge is a manual instrument: purchases come from entries...
    assert coal["metered_share"] == 1.0  # ...but the consumption is metered at the kiln
    assert diesel["co2_t"] == pytest.approx(35.0 * 1.4571 * 29.3076 * 0.0202 * 0.98 * 44 / 12, rel=1e-3)


def test_a_closed_month_keeps_its_coefficients_and_a_restatement_changes_that_month_and_ytd_only(
    tmp_path: Path,
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    src = CounterSource(start=NOV1 - 62 * DAY)
    oct_, nov = month("2026-10", zone), month("2026-11", zone)
    led = ledger_for(tmp_path, src, nov.end)
    led.refresh(src, oct_.start, oct_.end)
    for p in (*[day(f"2026-11-{d:02d}", zone) for d in range(1, 31)], oct_, nov):
        led.close(p, nov.end + 60)
    before = {
        k: led.figures(led.period(*k))
        for k in (("month", "2026-10"), ("month", "2026-11"), ("ytd", "2026-11"), ("day", "2026-11-12"))
    }
    # a laboratory heating value entered later does not revalue the closed month
    store_entries(
        led.store,
        led.unit,
        parse(
            "kind,date,carrier,quantity,unit,who\nlhv,2026-11-15,raw_coal,25,GJ/t,lab\n",
            "lab.csv",
            led.unit,
            led.store,
            dt.date(2026, 12, 2),
        ),
        nov.end,
    )
    assert led.figures(nov) == before[("month", "2026-11")]
    coal_before = next(c for c in before[("month", "2026-11")]["carriers"] if c["carrier"] == "raw_coal")
    rev, _f = led.restate(
        "2026-11",
        "raw_coal",
        "quantity",
        coal_before["quantity"] * 1.02,
        "Li Wei",
        "weighbridge recalibration",
        nov.end + 3600,
    )
    assert rev == 1
    after = {k: led.figures(led.period(*k)) for k in before}
    assert after[("month", "2026-10")] == before[("month", "2026-10")]
    assert after[("day", "2026-11-12")] == before[("day", "2026-11-12")]
    coal_after = next(c for c in after[("month", "2026-11")]["carriers"] if c["carrier"] == "raw_coal")
    assert coal_after["quantity"] == pytest.approx(coal_before["quantity"] * 1.02)
    assert coal_after["kgce_per_unit"] == coal_before["kgce_per_unit"]  # the month's own coefficient, not the lab's
    delta = coal_after["kgce_equivalent"] - coal_before["kgce_equivalent"]
    for k in (("month", "2026-11"), ("ytd", "2026-11")):
        assert after[k]["totals"]["comprehensive_kgce_equivalent"] == pytest.approx(
            before[k]["totals"]["comprehensive_kgce_equivalent"] + delta
        )
    assert after[("month", "2026-11")]["revision"] == 1 and after[("ytd", "2026-11")]["restated_months"] == ["2026-11"]
    (r,) = led.restatements("2026-11")
    assert (r["who"], r["why"], r["old"]) == ("Li Wei", "weighbridge recalibration", coal_before["quantity"])
    # the month's consistency check now sees the restated value against the unchanged days
    cons = next(c for c in after[("month", "2026-11")]["quality"]["consistency"] if c["carrier"] == "raw_coal")
    assert cons["deviation"] == pytest.approx(0.02 / 1.02, rel=1e-6)


def test_coefficients_come_from_the_shipped_factor_table() -> None:
    rows = data_file("energy_factors.yaml")["carriers"]
    assert math.isclose(float(rows["electricity"]["kgce_per_unit"]), 0.1229)


def test_the_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.sqlite")
    assert s.schema_version() == SCHEMA_VERSION
    s.db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    s.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "a.sqlite")


def test_a_product_takes_the_energy_of_its_meters_exports_subtracted(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    products = [
        {
            "name": "clinker",
            "indicator": "cement_clinker",
            "output": {"device": "kiln1"},
            "meters": ["E-GRID", "E-EXP", "C-KILN"],
        }
    ]
    cfg = accounts_config(str(tmp_path), products=products)
    led = Ledger(cfg.units[0], open_store(tmp_path))
    d = day("2026-11-02", zone)
    led.refresh(CounterSource(), d.start, d.end)
    (prod,) = led.figures(d)["products"]
    want = (RATES["E-GRID"] - RATES["E-EXP"]) * DAY * 0.1229 + RATES["C-KILN"] * DAY * 714.3
    assert prod["energy_kgce"] == pytest.approx(want, rel=1e-9)
    assert prod["kgce_per_unit"] == pytest.approx(want / (RATES["output:clinker"] * DAY), rel=1e-9)


def test_a_laboratory_heating_value_restates_the_coefficient_not_the_quantity(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    nov = month("2026-11", zone)
    led = ledger_for(tmp_path, CounterSource(), nov.end)
    led.close(nov, nov.end + 60)
    before = next(c for c in led.figures(nov)["carriers"] if c["carrier"] == "raw_coal")
    rev, _f = led.restate("2026-11", "raw_coal", "lhv_gj_per_unit", 23.0, "Lab", "late laboratory result", nov.end)
    f = led.figures(nov)
    after = next(c for c in f["carriers"] if c["carrier"] == "raw_coal")
    assert rev == 1 and after["quantity"] == before["quantity"]
    assert after["kgce_per_unit"] == pytest.approx(23.0 * 1e6 / 29307.6)
    assert after["kgce_equivalent"] == pytest.approx(before["kgce_equivalent"] * 23.0 / (714.3 / (1e6 / 29307.6)))
    assert after["co2_t"] == pytest.approx(before["co2_t"] * 23.0 / (714.3 / (1e6 / 29307.6)))
    assert "restated LHV 23" in after["coefficient_source"]
    (r,) = led.restatements("2026-11")
    assert r["field"] == "lhv_gj_per_unit" and r["old"] == pytest.approx(714.3 / (1e6 / 29307.6)) and r["new"] == 23.0
    have = led.latest("month", "2026-11")
    assert have is not None  # the restated month keeps its restated coefficient with it
    assert have[2].carriers["raw_coal"].kgce_per_unit == pytest.approx(after["kgce_per_unit"])


def test_a_periods_figures_read_only_its_own_quarters_not_the_units_history(tmp_path: Path) -> None:
    """Every 15-minute record reads its period's quarters: a read that scanned the unit's whole history (the
    primary key starts with the series) made each record cost more as the months piled up (a month's test took
    15 s, now 3 s). Each query on the quarter table must search by the period's time range."""
    led = ledger_for(tmp_path, CounterSource(), NOV1 + 2 * DAY)
    statements: list[str] = []
    led.store.db.set_trace_callback(statements.append)
    try:
        led.figures(day("2026-11-02", led.unit.zone()))
    finally:
        led.store.db.set_trace_callback(None)
    reads = [s for s in statements if " FROM quarter " in s]
    assert reads
    for sql in reads:
        plan = " | ".join(row[3] for row in led.store.db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "start_ts>" in plan, (sql, plan)  # a range search on the period's start times
