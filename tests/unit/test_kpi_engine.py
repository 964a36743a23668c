"""KpiEngine behaviour on synthetic streams: coverage and quality, finality, replays, grading, custom formulas,
renewable ladder, energy balance, baselines with CUSUM."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import Grade, KpiValue, Quality, Role, Sample
from tests.unit.kpi_drive import drive

T0 = 1_767_225_600.0  # 08:00 Asia/Shanghai, on an hour
DEVICES = {
    "m": DeviceInfo("m"),
    "k": DeviceInfo("k"),
    "pv": DeviceInfo("pv", renewable=True),
}


def engine(section: dict[str, Any], **kw: Any) -> KpiEngine:
    cfg = KpiSectionConfig.model_validate({"windows": ["15m", "1h"], "settle_s": 30} | section)
    return KpiEngine(cfg, kw.get("devices", DEVICES), "Asia/Shanghai", lambda: T0)


LINE = {
    "name": "l1",
    "indicator": "cement_clinker",
    "production": [{"device": "k", "role": "production_t"}],
    "electricity": [{"device": "m", "role": "energy_import_kwh"}],
    "fuels": [{"device": "k", "role": "coal_t", "carrier": "raw_coal"}],
}


def plant(
    seconds: int,
    step: int = 2,
    kw: float = 3600.0,
    tph: float = 36.0,
    coal_tph: float = 4.5,
    skip: tuple[float, float] = (0, 0),
) -> Iterator[tuple[float, list[Sample]]]:
    """A line at constant rates: kWh, clinker t and coal t counters, read every ``step`` seconds."""
    for k in range(0, seconds + 1, step):
        t = T0 + k
        if skip[0] <= k < skip[1]:
            continue
        yield (
            t,
            [
                Sample("m", "e", 1000.0 + kw * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                Sample("k", "p", 50.0 + tph * k / 3600, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
                Sample("k", "c", 9.0 + coal_tph * k / 3600, "t", Quality.GOOD, t, role=Role.COAL_T),
            ],
        )


def finals(values: list[KpiValue], name: str, window: str = "1h") -> list[KpiValue]:
    return [v for v in values if v.name == name and v.window == window and v.detail["final"] == 1.0]


def test_line_kpis_and_grade_with_unverified_reference() -> None:
    out = drive(engine({"lines": [LINE]}), plant(3700), since=T0)
    sec = finals(out, "sec_kwh_per_t")
    assert len(sec) == 1 and sec[0].value == pytest.approx(100.0)
    kgce = finals(out, "energy_kgce_per_t")[0]
    # 100 kWh/t x 0.1229 + 0.125 t coal/t x 714.3 kgce/t
    assert kgce.value == pytest.approx(12.29 + 89.2875)
    assert kgce.grade is Grade.BETWEEN and kgce.distance == pytest.approx((kgce.value or 0.0) - 100.0)
    assert "status 2nd (not confirmed in the official text)" in kgce.reference
    assert "GB 16780-2021" in kgce.reference and "edition 2021" in kgce.reference
    assert sec[0].grade is None  # cement_clinker grades kgce/t, not kWh/t


def test_site_level_override_replaces_the_shipped_row() -> None:
    override = {
        "indicator": "cement_clinker",
        "benchmark": 95,
        "baseline": 100,
        "edition": "2021",
        "standard": "Inner Mongolia notice (example)",
    }
    out = drive(engine({"lines": [LINE], "levels": [override]}), plant(3700), since=T0)
    kgce = finals(out, "energy_kgce_per_t")[0]
    assert kgce.grade is Grade.BELOW_BASELINE and kgce.distance == pytest.approx((kgce.value or 0.0) - 100.0)
    assert "set by the site" in kgce.reference


def test_each_final_period_is_reported_once_and_running_values_are_marked() -> None:
    out = drive(engine({"lines": [LINE]}), plant(3700), since=T0)
    quarters = [v.window_start for v in finals(out, "production", "15m")]
    assert quarters == [T0 + 900 * i for i in range(4)]
    running = [v for v in out if v.name == "production" and v.detail["final"] == 0.0]
    assert running and all(v.ts < v.window_end for v in running)


def test_replayed_and_reordered_samples_change_nothing() -> None:
    once = drive(engine({"lines": [LINE]}), plant(3700), since=T0)
    batches = list(plant(3700))
    replayed: list[tuple[float, list[Sample]]] = []
    for i, (t, s) in enumerate(batches):
        replayed.append((t, s))
        if i >= 2:
            replayed.append((t, batches[i - 2][1] + s))  # an old poll replayed, and the current one again
    twice = drive(engine({"lines": [LINE]}), iter(replayed), since=T0)
    a = finals(once, "electricity_kwh")[0].value
    b = finals(twice, "electricity_kwh")[0].value
    assert a == pytest.approx(3600.0) and b == pytest.approx(a, rel=1e-12)


def test_gap_in_a_rate_is_flagged_not_presented_as_valid() -> None:
    motor = {"kind": "motor", "name": "mot", "device": "m", "rated_power_kw": 100}
    devices = {"m": DeviceInfo("m")}
    eng = engine({"equipment": [motor], "max_gap_s": 10}, devices=devices)

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        for k in range(0, 3700, 2):
            if 600 <= k < 1200:  # ten minutes without good readings
                yield T0 + k, [Sample("m", "p", None, "kW", Quality.BAD, T0 + k, "timeout", Role.ACTIVE_POWER_KW)]
            else:
                yield T0 + k, [Sample("m", "p", 80.0, "kW", Quality.GOOD, T0 + k, role=Role.ACTIVE_POWER_KW)]

    out = drive(eng, stream(), since=T0)
    q = {v.window_start - T0: v for v in finals(out, "load_factor", "15m")}
    assert q[0].quality is Quality.UNCERTAIN and q[0].coverage == pytest.approx(2 / 3, abs=0.01)
    assert q[0].value == pytest.approx(0.8)  # the mean over what was covered, flagged
    assert q[900].coverage == pytest.approx(2 / 3, abs=0.01)
    assert q[1800].quality is Quality.GOOD and q[1800].value == pytest.approx(0.8)
    assert finals(out, "load_factor")[0].quality is Quality.UNCERTAIN
    assert eng.ignored > 0


def test_no_production_is_no_value_not_a_division_by_zero() -> None:
    out = drive(engine({"lines": [LINE]}), plant(3700, tph=0.0), since=T0)
    sec = finals(out, "sec_kwh_per_t")[0]
    assert sec.value is None and sec.quality is Quality.UNCERTAIN and sec.grade is None


def test_custom_formula_over_kpis_and_points() -> None:
    custom = [
        {"name": "double_sec", "scope": "l1", "formula": "l1.sec_kwh_per_t * 2", "unit": "kWh/t"},
        {"name": "chain", "formula": 'l1.double_sec + total("m", "energy_import_kwh") / 3600', "unit": "x"},
    ]
    out = drive(engine({"lines": [LINE], "custom": custom}), plant(3700), since=T0)
    assert finals(out, "double_sec")[0].value == pytest.approx(200.0)
    assert finals(out, "chain")[0].value == pytest.approx(201.0)


def test_renewable_share_against_the_target_ladder() -> None:
    section = {
        "renewable": [{"total": [{"device": "m", "role": "energy_import_kwh"}], "total_includes_renewable": False}]
    }
    eng = engine(section)

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        for k in range(0, 3700, 2):
            t = T0 + k
            yield (
                t,
                [
                    Sample("m", "e", 3000 * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                    Sample("pv", "e", 1000 * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                ],
            )

    share = finals(drive(eng, stream(), since=T0), "renewable_share")[0]
    assert share.value == pytest.approx(0.25)
    assert share.distance == pytest.approx(0.25) and "next target 50 %" in share.reference
    assert share.detail["target_reached"] == 0.0 and share.detail["to_target"] == pytest.approx(0.25)


def test_energy_balance_unaccounted_share() -> None:
    section = {
        "balance": [
            {
                "name": "b",
                "main": {"device": "m", "role": "energy_import_kwh"},
                "subs": [{"device": "k", "role": "energy_import_kwh"}],
                "max_unaccounted_share": 0.05,
            }
        ]
    }
    eng = engine(section)

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        for k in range(0, 3700, 2):
            t = T0 + k
            yield (
                t,
                [
                    Sample("m", "e", 1000 * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                    Sample("k", "e", 920 * k / 3600, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                ],
            )

    out = drive(eng, stream(), since=T0)
    share = finals(out, "unaccounted_share")[0]
    assert share.value == pytest.approx(0.08) and share.detail["exceeded"] == 1.0
    assert finals(out, "unaccounted_kwh")[0].value == pytest.approx(80.0)


def test_baseline_is_fitted_then_cusum_tracks_overconsumption() -> None:
    line = LINE | {
        "baseline": {"period": "15m", "variables": [{"name": "production", "production": True}], "training_periods": 4}
    }
    eng = engine({"lines": [line]})

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        e = p = 0.0
        for k in range(0, 4 * 3600 + 200, 5):
            t = T0 + k
            quarter = k // 900
            tph = 30.0 + 10.0 * (quarter % 3)  # production varies so the regression is determined
            kwh_per_s = (50.0 + 80.0 * tph) / 3600.0  # energy = 50 kW base + 80 kWh/t
            if k >= 8 * 900:
                kwh_per_s *= 1.1  # from the 9th quarter: 10 % over the baseline
            yield (
                t,
                [
                    Sample("m", "e", e, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                    Sample("k", "p", p, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
                ],
            )
            e += kwh_per_s * 5
            p += tph / 3600.0 * 5

    out = drive(eng, stream(), since=T0)
    cusum = [v for v in out if v.name == "baseline_cusum" and v.quality is Quality.GOOD]
    expected = [v for v in out if v.name == "baseline_expected" and v.quality is Quality.GOOD]
    assert expected and expected[0].detail["r2"] > 0.99
    before = [v.value or 0.0 for v in cusum if v.window_end <= T0 + 8 * 900]
    after = [v.value or 0.0 for v in cusum if v.window_start >= T0 + 8 * 900]
    assert before and all(abs(x) < 1.0 for x in before)
    assert after == sorted(after) and after[-1] > 100.0


def test_device_info_takes_counter_width_from_the_profile() -> None:
    from agent.config.profile import ProfileConfig

    profile = ProfileConfig.model_validate(
        {
            "profile": "p",
            "address_base": 0,
            "points": [
                {
                    "name": "e",
                    "kind": "holding_register",
                    "address": 0,
                    "type": "uint32",
                    "scale": 0.01,
                    "role": "energy_import_kwh",
                },
                {"name": "f", "kind": "holding_register", "address": 2, "type": "float32", "role": "active_power_kw"},
            ],
        }
    )
    info = DeviceInfo.from_config(type("D", (), {"name": "m", "renewable": True, "tags": {"line": "l1"}})(), profile)
    assert info.counter_modulus == {"e": pytest.approx(2**32 * 0.01)}
    assert info.roles == {"e": Role.ENERGY_IMPORT_KWH, "f": Role.ACTIVE_POWER_KW}
    assert info.renewable and info.tags == {"line": "l1"}


def test_declared_counter_width_times_the_profile_scale_sets_the_wrap() -> None:
    devices = {"m": DeviceInfo("m", scales={"e": 0.01}), "k": DeviceInfo("k")}
    line = LINE | {"electricity": [{"device": "m", "role": "energy_import_kwh", "counter_bits": 16}], "fuels": []}
    eng = engine({"lines": [line]}, devices=devices)

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        for k in range(0, 3700, 2):
            t = T0 + k
            kwh = (600.0 + 1.0 * k) % 655.36  # a 16-bit register x 0.01 kWh wraps at 655.36
            yield (
                t,
                [
                    Sample("m", "e", kwh, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
                    Sample("k", "p", 1.0 + k / 3600, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
                ],
            )

    assert finals(drive(eng, stream(), since=T0), "electricity_kwh")[0].value == pytest.approx(3600.0)
    stats = eng.counter_stats()
    assert any(getattr(v, "wraps", 0) == 6 for v in stats.values())


def test_max_demand_fixed_blocks_and_sliding_window() -> None:
    section = {
        "demand": [
            {
                "name": "site",
                "meters": [{"device": "m", "role": "energy_import_kwh"}],
                "windows": ["1h"],
                "contracted_kw": 1800,
            }
        ]
    }
    eng = engine(section)
    peak = (450.0, 1350.0)  # 2000 kW from 08:07:30 to 08:22:30, else 1000 kW

    def kwh(k: float) -> float:
        extra = max(0.0, min(k, peak[1]) - peak[0])
        return (1000.0 * k + 1000.0 * extra) / 3600.0

    stream = (
        (T0 + k, [Sample("m", "e", kwh(k), "kWh", Quality.GOOD, T0 + k, role=Role.ENERGY_IMPORT_KWH)])
        for k in range(0, 3700, 2)
    )
    out = drive(eng, stream, since=T0)
    fixed = finals(out, "max_demand_kw")[0]
    sliding = finals(out, "max_demand_sliding_kw")[0]
    assert fixed.value == pytest.approx(1500.0)  # each block holds half the peak
    assert sliding.value == pytest.approx((14.5 * 2000 + 0.5 * 1000) / 15)
    assert sliding.distance == pytest.approx((sliding.value or 0.0) - 1800) and sliding.detail["over_contracted_kw"] > 0


def test_equal_value_electricity_and_measured_heating_value() -> None:
    line = LINE | {"fuels": [{"device": "k", "role": "coal_t", "carrier": "raw_coal", "lhv_gj_per_unit": 29.3076}]}
    section = {
        "lines": [line],
        "factors": {"electricity_method": "equal_value", "electricity_equal_value_kgce_per_kwh": 0.3},
    }
    out = drive(engine(section), plant(3700), since=T0)
    # 3600 kWh x 0.3 + 4.5 t coal at 29.3076 GJ/t = 1000 kgce/t
    assert finals(out, "energy_kgce")[0].value == pytest.approx(3600 * 0.3 + 4.5 * 1000.0)
    assert finals(out, "heat_kj_per_kg")[0].value == pytest.approx(4.5 * 29.3076 / 36.0 * 1000)


def test_fan_efficiency_and_kiln_heat_consumption() -> None:
    equipment = [
        {"kind": "fan", "name": "fan1", "device": "f", "pressure": {"device": "f", "role": "discharge_pressure_mpa"}},
        {
            "kind": "kiln",
            "name": "kiln",
            "device": "k",
            "fuels": [{"device": "k", "role": "coal_t", "carrier": "raw_coal", "lhv_gj_per_unit": 25.0}],
        },
    ]
    devices = DEVICES | {"f": DeviceInfo("f")}
    eng = engine({"equipment": equipment}, devices=devices)

    def stream() -> Iterator[tuple[float, list[Sample]]]:
        for t, line in plant(3700):
            fan = [
                Sample("f", "q", 36000.0, "m3/h", Quality.GOOD, t, role=Role.FLOW_M3H),  # 10 m3/s
                Sample("f", "dp", 0.003, "MPa", Quality.GOOD, t, role=Role.DISCHARGE_PRESSURE_MPA),  # 3 kPa
                Sample("f", "p", 40.0, "kW", Quality.GOOD, t, role=Role.ACTIVE_POWER_KW),
            ]
            yield t, [*line, *fan]

    out = drive(eng, stream(), since=T0)
    assert finals(out, "unit_efficiency")[0].value == pytest.approx(30.0 / 40.0)  # fan + motor
    assert finals(out, "heat_kj_per_kg")[0].value == pytest.approx(4.5 * 25.0 / 36.0 * 1000)


@settings(max_examples=25, deadline=None)
@given(
    swaps=st.lists(st.integers(2, 920), max_size=40),  # the first reading is where counting starts: not moved
    dups=st.lists(st.integers(0, 920), max_size=40),
    nans=st.lists(st.integers(1, 920), max_size=10),
)
def test_replays_reordering_and_nan_never_change_window_totals(
    swaps: list[int], dups: list[int], nans: list[int]
) -> None:
    """A 16-bit kWh counter at a constant rate, read every 2 s; the stream is disturbed by swapped neighbours,
    replayed readings and NaN. The quarter-hourly totals stay exactly those of the clean stream."""
    devices = {"m": DeviceInfo("m", counter_modulus={"e": 65536 * 0.01}), "k": DeviceInfo("k")}
    line = LINE | {"fuels": []}

    def reading(k: int, value: float | None = None) -> list[Sample]:
        t = T0 + 2 * k
        kwh = (600.0 + 2.0 * k) % 655.36 if value is None else value
        return [
            Sample("m", "e", kwh, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
            Sample("k", "p", 1.0 + k / 1800, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
        ]

    clean = [reading(k) for k in range(931)]
    noisy = list(clean)
    for i in swaps:
        noisy[i - 1], noisy[i] = noisy[i], noisy[i - 1]
    for i in sorted(dups, reverse=True):
        noisy.insert(i + 1, noisy[i])
    for i in nans:
        noisy.insert(i, reading(i, math.nan))

    def totals(batches: list[list[Sample]]) -> dict[tuple[str, float], float | None]:
        eng = engine({"lines": [line], "windows": ["15m"]}, devices=devices)
        for b in batches:
            eng.ingest(b)
        out = eng.evaluate(T0 + 1862 + 60)
        return {(v.window, v.window_start): v.value for v in out if v.name == "electricity_kwh" and v.detail["final"]}

    want = totals(clean)
    assert want[("15m", T0)] == pytest.approx(900.0) and want[("15m", T0 + 900)] == pytest.approx(900.0)
    got = totals(noisy)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_a_clock_far_ahead_does_not_emit_every_period_in_between() -> None:
    eng = engine({"lines": [LINE]})
    out = eng.evaluate(T0 + 365 * 86400)
    quarters = finals(out, "production", "15m")
    assert 0 < len(quarters) <= 40 * 96 + 1
    assert all(v.quality is Quality.BAD and v.value is None for v in quarters)
