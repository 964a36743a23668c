"""The demo's live view, rendered from fixed wire messages: one screen of at most 40 lines with the eleven plant
devices and every KPI of the demo, ratios as percentages (never a unit "1"), provisional values marked, the
places the data went, and why renewable share is 0 at night and peak demand is empty at first."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from agent.cli._dashboard import DashboardState, Places, frame, render
from agent.model import Grade, KpiValue, Quality, Sample
from agent.wire import StatusMessage, encode_kpis, encode_samples, encode_status
from simulators.layout import PLANT_LAYOUT

NIGHT = 1_764_000_000.0  # 2025-11-24 16:00 UTC = 00:00 in Asia/Shanghai
STARTED = NIGHT - 130  # the demo started at 23:57:50 plant time: the first whole demand block ends 00:15
NOON = NIGHT + 12 * 3600

# (scope, name, unit, value): what the demo's KPI section produces
DEMO_KPIS = [
    ("compressor1", "specific_power_kw_per_m3min", "kW/(m3/min)", 6.27),
    *[
        ("line1", name, unit, value)
        for name, unit, value in [
            ("co2_t", "tCO2", 0.117),
            ("co2_t_per_t", "tCO2/t", 0.224),
            ("electricity_kwh", "kWh", 17.39),
            ("energy_kgce", "kgce", 42.79),
            ("energy_kgce_per_t", "kgce/t", 81.74),
            ("heat_kj_per_kg", "kJ/kg", 2276.0),
            ("production", "t", 0.524),
            ("sec_kwh_per_t", "kWh/t", 33.23),
            ("waste_heat_gj", "GJ", 0.127),
            ("waste_heat_share", "1", 0.101),
            ("water_m3_per_t", "m3/t", 0.307),
        ]
    ],
    ("plant", "unaccounted_kwh", "kWh", 0.902),
    ("plant", "unaccounted_share", "1", 0.025),
    ("pump1", "efficiency", "1", 0.771),
    ("raw-mill", "efficiency", "1", 0.955),
    ("raw-mill", "load_factor", "1", 0.815),
    ("site", "renewable_share", "1", 0.0),
    ("transformer1", "efficiency", "1", 0.994),
    ("transformer1", "load_factor", "1", 0.770),
    ("transformer1", "losses_kwh", "kWh", 0.055),
]
DEMAND = [("site", "max_demand_kw", "kW"), ("site", "max_demand_sliding_kw", "kW")]


def kpi(scope: str, name: str, unit: str, value: float | None, window: str, now: float, final: bool) -> KpiValue:
    length = {"1m": 60.0, "15m": 900.0}.get(window, 86400.0)  # the calendar windows start today, for the test
    start = (now // length) * length - (length if final else 0.0)
    graded = name == "energy_kgce_per_t"
    return KpiValue(
        name=name,
        scope=scope,
        value=value,
        unit=unit,
        window=window,
        window_start=start,
        window_end=start + length,
        coverage=0.9 if value is not None else 0.0,
        quality=Quality.GOOD if value is not None else Quality.BAD,
        ts=now,
        grade=Grade.BENCHMARK if graded else None,
        distance=-18.26 if graded else None,
        detail={"final": 1.0 if final else 0.0},
    )


def state_at(now: float, *, renewable: float = 0.0, demand: float | None = None) -> DashboardState:
    state = DashboardState()
    kpis = [
        kpi(scope, name, unit, renewable if name == "renewable_share" else value, window, now, window == "1m")
        for scope, name, unit, value in DEMO_KPIS
        for window in ("1m", "15m")
    ]
    kpis += [kpi(scope, name, unit, demand, "15m", now, False) for scope, name, unit in DEMAND]
    # the graded KPI is also computed over its grading periods (the national levels are annual figures)
    kpis += [kpi("line1", "energy_kgce_per_t", "kgce/t", 82.97, w, now, False) for w in ("month", "year", "12mo")]
    state.take(encode_kpis(site="sim-cement", gateway="gw1", boot="b", seq=1, ts=now, kpis=kpis))
    health = {}
    for seq, device in enumerate(PLANT_LAYOUT, start=2):
        samples = [Sample(device, f"p{i}", float(i), "kW", Quality.GOOD, now - 0.3) for i in range(8)]
        state.take(
            encode_samples(
                site="sim-cement",
                gateway="gw1",
                boot="b",
                seq=seq,
                device=device,
                ts=now - 0.3,
                tags={},
                samples=samples,
            )
        )
        health[device] = {"state": "ok", "consecutive_failures": 0}
    health["pump1"] = {"state": "failed", "consecutive_failures": 4}
    status = StatusMessage(
        site="sim-cement", gateway="gw1", state="online", ts=now, health={"devices": health, "spool": {"depth": 0}}
    )
    state.take(encode_status(status))
    return state


def places(influx_port: int | None = 40125) -> Places:
    return Places(
        workdir=Path("/tmp/energy-demo-abc123"),
        kept=False,
        broker="mosquitto",
        broker_port=40123,
        topic="plant/sim-cement/gw1",
        influx_port=influx_port,
        timezone="Asia/Shanghai",
        started=STARTED,
    )


def test_one_screen_of_at_most_40_lines_shows_every_device_and_kpi() -> None:
    lines = render(state_at(NIGHT), NIGHT, places())
    text = "\n".join(lines)
    assert len(lines) <= 40, text
    assert max(len(line) for line in lines) <= 112, text
    for device in PLANT_LAYOUT:
        assert device in text
    for _, name, _, _ in [*DEMO_KPIS, *[(*d, None) for d in DEMAND]]:
        assert name in text
    assert "more KPIs" not in text
    assert "failed 4" in text  # pump1's failures in a row


def test_ratios_are_percentages_and_open_windows_are_marked() -> None:
    text = "\n".join(render(state_at(NIGHT), NIGHT, places()))
    assert not re.search(r"\d 1(?![\d.,])", text), "a value printed with the unit '1'"
    assert "95.5 %" in text  # raw-mill efficiency 0.955
    row = next(line for line in text.splitlines() if "energy_kgce_per_t" in line)
    assert "81.74 kgce/t " in row and "81.74 kgce/t*" in row  # 1m final, 15m still open
    assert "BENCHMARK 标杆" in row and "-18.26" in row
    assert "KPI   (* = window still open)" in text
    graded = text.splitlines().index(row)
    assert text.splitlines()[graded + 1].endswith(
        "└ grading periods: month 82.97* BENCHMARK | year 82.97* BENCHMARK | 12mo 82.97* BENCHMARK"
    )


def test_night_and_first_block_are_explained() -> None:
    text = "\n".join(render(state_at(NIGHT), NIGHT, places()))
    assert "Renewable share is 0 % at night" in text and "06:00-18:00 plant time, and it is 00:00 there" in text
    assert "Peak demand counts whole 15-minute blocks only: empty until the first whole one ends, 00:15." in text
    demand_row = next(line for line in text.splitlines() if "max_demand_kw" in line)
    assert "after 00:15" in demand_row


def test_no_explanations_when_values_are_there() -> None:
    text = "\n".join(render(state_at(NOON, renewable=0.31, demand=5120.0), NOON, places()))
    assert "at night" not in text and "whole 15-minute blocks" not in text
    assert "31.0 %" in text and "5,120 kW" in text


def test_says_where_the_data_went_and_how_to_look() -> None:
    text = "\n".join(render(state_at(NIGHT), NIGHT, places()))
    assert "/tmp/energy-demo-abc123" in text and "--keep" in text
    assert "mosquitto_sub -h 127.0.0.1 -p 40123 -t 'plant/sim-cement/gw1/kpi' -v" in text
    assert "http://127.0.0.1:40125" in text
    assert """curl -G 127.0.0.1:40125/query -d db=energy --data-urlencode 'q=SELECT last("value")""" in text
    without = "\n".join(render(state_at(NIGHT), NIGHT, places(influx_port=None)))
    assert "InfluxDB     not in this run" in without


def test_a_small_terminal_gets_fewer_kpi_rows_and_says_so() -> None:
    lines = render(state_at(NIGHT), NIGHT, places(), max_lines=30)
    assert len(lines) == 30
    assert any(re.search(r"\.\.\. \d+ more KPIs", line) for line in lines)
    assert any("mosquitto_sub" in line for line in lines)  # the places stay


def test_frame_redraws_in_place_without_clearing_the_screen() -> None:
    lines = render(state_at(NIGHT), NIGHT, places())
    out = frame(lines)
    assert out.startswith("\x1b[H") and out.endswith("\x1b[J")
    assert "\x1b[2J" not in out
    assert out.count("\x1b[K\n") == len(lines)


def test_a_kpi_without_a_column_window_shows_its_values_under_its_row() -> None:
    state = state_at(NIGHT)
    extra = kpi("line1", "cusum_kwh", "kWh", 12.0, "day", NIGHT, False)
    state.take(encode_kpis(site="sim-cement", gateway="gw1", boot="b", seq=99, ts=NIGHT, kpis=[extra]))
    lines = render(state, NIGHT, places(), max_lines=60)
    row = next(i for i, line in enumerate(lines) if "cusum_kwh" in line)
    assert lines[row + 1].strip() == "└ day 12.00*"


def test_the_grade_comes_from_the_longest_window_that_has_one() -> None:
    """Early on the open 15-minute window has too little coverage for a grade; the last minute's grade shows."""
    state = state_at(NIGHT)
    open_window = replace(
        kpi("line1", "energy_kgce_per_t", "kgce/t", 80.0, "15m", NIGHT, False),
        grade=None,
        distance=None,
        coverage=0.03,
        quality=Quality.UNCERTAIN,
    )
    state.take(encode_kpis(site="sim-cement", gateway="gw1", boot="b", seq=99, ts=NIGHT, kpis=[open_window]))
    row = next(line for line in render(state, NIGHT, places()) if "energy_kgce_per_t" in line)
    assert "80.00 kgce/t*" in row and "3%" in row  # the open window's value and coverage so far
    assert "BENCHMARK 标杆" in row and "-18.26" in row  # the closed minute's grade


def test_a_closed_window_is_shown_until_the_next_one_closes() -> None:
    """The next minute's running value (partial coverage, no grade yet) does not hide the last complete minute."""
    state = state_at(NIGHT)
    running = kpi("line1", "energy_kgce_per_t", "kgce/t", 70.0, "1m", NIGHT + 20, False)
    state.take(encode_kpis(site="sim-cement", gateway="gw1", boot="b", seq=98, ts=NIGHT + 20, kpis=[running]))
    row = next(line for line in render(state, NIGHT + 20, places()) if "energy_kgce_per_t" in line)
    assert "81.74 kgce/t " in row and "70.00" not in row
    closed = kpi("line1", "energy_kgce_per_t", "kgce/t", 79.5, "1m", NIGHT + 60, True)
    state.take(encode_kpis(site="sim-cement", gateway="gw1", boot="b", seq=99, ts=NIGHT + 60, kpis=[closed]))
    row = next(line for line in render(state, NIGHT + 60, places()) if "energy_kgce_per_t" in line)
    assert "79.50 kgce/t " in row
    assert not state.running.get(("line1", "energy_kgce_per_t", "1m"))  # its window closed


def test_the_screen_says_which_window_a_grade_and_its_distance_belong_to_with_the_unit() -> None:
    text = "\n".join(render(state_at(NIGHT), NIGHT, places()))
    assert (
        "Grade of line1 energy_kgce_per_t: BENCHMARK in the 1m window 23:59-00:00, distance -18.26 kgce/t "
        "(+ is worse)." in text
    )


def test_before_the_first_grade_the_screen_says_which_window_brings_it_and_when() -> None:
    """Issue 17: a newcomer waited without knowing when a grade would appear. The first whole minute starting at
    least 10 s after the agent is graded; it shows one publish interval (plus a margin) after it ends."""
    state = DashboardState()
    early = STARTED + 5  # 23:57:55 plant time: nothing published yet
    text = "\n".join(render(state, early, replace(places(), started=STARTED)))
    assert "First grade: the 1-minute window 23:58-23:59 (the first whole one since the start), on screen by about " \
        "23:59:15." in text  # fmt: skip


def test_the_watch_command_is_one_that_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # a machine without mosquitto-clients
    text = "\n".join(render(state_at(NIGHT), NIGHT, places()))
    assert "  watch it:  sudo apt-get install mosquitto-clients; then mosquitto_sub -h 127.0.0.1 -p 40123" in text
