"""Energy and carbon accounting a manager can sign: one energy content per carrier, indirect CO2 of steam and heat,
credits for recovered or exported energy, park totals for dual control, power factor with reverse kvarh, demand
over the contracted value, and no CUSUM from a weak baseline. Expectations are computed by hand in each docstring
(1 kgce = 29.3076 MJ, so 34.1208 kgce/GJ)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import Grade, KpiValue, Quality, Role, Sample
from tests.unit.kpi_site_check import meter_site_issues

T0 = 1_767_225_600.0  # 08:00 Asia/Shanghai
HOUR = 3600.0
Rates = dict[tuple[str, Role], float]  # counter increase per hour, by (device, role)


def run(
    section: dict[str, Any],
    rates: Rates | Callable[[float], Rates],
    seconds: int = 3700,
    renewable: tuple[str, ...] = (),
) -> list[KpiValue]:
    """Counters growing at constant (or per-period) rates, read every 2 s, evaluated every minute."""
    cfg = KpiSectionConfig.model_validate({"windows": ["1h"], "settle_s": 30} | section)
    keys = rates(0.0) if callable(rates) else rates
    devices = {d: DeviceInfo(d, renewable=d in renewable) for d, _ in keys}
    eng = KpiEngine(cfg, devices, "Asia/Shanghai", lambda: T0)
    totals = dict.fromkeys(keys, 100.0)
    out: list[KpiValue] = []
    for k in range(0, seconds + 1, 2):
        t = T0 + k
        now = rates(float(k)) if callable(rates) else rates
        if k:
            for key in totals:
                totals[key] += now[key] * 2.0 / HOUR
        eng.ingest([Sample(d, r.value, v, "", Quality.GOOD, t, role=r) for (d, r), v in totals.items()])
        if k % 60 == 0:
            out += eng.evaluate(t)
    return out


def final(values: list[KpiValue], name: str, scope: str | None = None, window: str = "1h") -> KpiValue:
    return next(
        v
        for v in values
        if v.name == name and v.window == window and v.detail["final"] == 1.0 and scope in (None, v.scope)
    )


def line(**kw: Any) -> dict[str, Any]:
    return {"name": "l1", "production": [{"device": "k", "role": "production_t"}]} | kw


# --- one energy content per carrier (item 4) and indirect CO2 of steam and heat (item 3) ---------------------------


def test_raw_coal_kgce_and_co2_use_the_same_energy_content() -> None:
    """4.5 t/h raw coal, no measured heating value. kgce: 4.5 x 714.3 = 3214.35 kgce. Energy content 714.3 /
    34.1208 = 20.934 GJ/t, so CO2 = 4.5 x 20.934 x 0.0261 tC/GJ x 0.93 x 44/12 = 4.5 x 1.86318 = 8.3843 t (before:
    the bituminous default NCV 19.570 GJ/t gave 4.5 x 1.7417 = 7.8377 t, 6.5 % less, from another energy content).
    With a measured 22 GJ/t both follow: 4.5 x 22 x 34.1208 = 3377.96 kgce and 4.5 x 22 x 0.0261 x 0.93 x 44/12 =
    8.8111 t."""
    rates: Rates = {("k", Role.PRODUCTION_T): 36.0, ("k", Role.COAL_T): 4.5}
    coal = {"device": "k", "role": "coal_t", "carrier": "raw_coal"}
    out = run({"lines": [line(fuels=[coal])]}, rates)
    assert final(out, "energy_kgce").value == pytest.approx(3214.35, rel=1e-4)
    assert final(out, "co2_t").value == pytest.approx(8.3843, rel=1e-4)
    out = run({"lines": [line(fuels=[coal | {"lhv_gj_per_unit": 22.0}])]}, rates)
    assert final(out, "energy_kgce").value == pytest.approx(3377.96, rel=1e-4)
    assert final(out, "co2_t").value == pytest.approx(8.8111, rel=1e-4)


def test_natural_gas_co2_from_its_declared_energy_content() -> None:
    """1000 m3/h natural gas: 1.2143 kgce/m3 = 35.588 MJ/m3; CO2 = 1000 x 0.035588 x 0.0153 x 0.99 x 44/12 =
    1.9765 t (the GB/T 32151.34 default 38.931 MJ/Nm3 would give 2.1622 t: 9 % apart, for the same gas)."""
    rates: Rates = {("k", Role.PRODUCTION_T): 10.0, ("k", Role.GAS_M3): 1000.0}
    out = run({"lines": [line(fuels=[{"device": "k", "role": "gas_m3", "carrier": "natural_gas"}])]}, rates)
    assert final(out, "energy_kgce").value == pytest.approx(1214.3, rel=1e-4)
    assert final(out, "co2_t").value == pytest.approx(1.9765, rel=1e-4)


def test_purchased_steam_and_heat_carry_indirect_co2() -> None:
    """5 t/h purchased low-pressure steam: 5 x 128.6 = 643 kgce; energy content 128.6 / 34.1208 = 3.7690 GJ/t, CO2
    at the purchased-heat factor 0.11 tCO2/GJ (GB/T 32150-2025): 5 x 3.7690 x 0.11 = 2.0729 t (before: 0). 10 GJ/h
    of heat: 341.2 kgce and 10 x 0.11 = 1.1 t. Together 3.1729 t."""
    rates: Rates = {("k", Role.PRODUCTION_T): 10.0, ("k", Role.STEAM_T): 5.0, ("k", Role.HEAT_RECOVERED_GJ): 10.0}
    fuels = [
        {"device": "k", "role": "steam_t", "carrier": "steam_low_pressure"},
        {"device": "k", "role": "heat_recovered_gj", "carrier": "heat"},
    ]
    out = run({"lines": [line(fuels=fuels)]}, rates)
    assert final(out, "energy_kgce").value == pytest.approx(643.0 + 341.2, rel=1e-4)
    assert final(out, "co2_t").value == pytest.approx(3.1729, rel=1e-4)


# --- credits (item 2) -----------------------------------------------------------------------------------------------


def converter_line(**kw: Any) -> dict[str, Any]:
    return line(
        indicator="converter",
        electricity=[{"device": "m", "role": "energy_import_kwh"}],
        fuels=[{"device": "k", "role": "gas_m3", "carrier": "coke_oven_gas"}],
        credits=[
            {"device": "r", "role": "gas_m3", "carrier": "converter_gas"},
            {"device": "w", "role": "energy_export_kwh", "carrier": "electricity", "co2": "grid"},
        ],
        **kw,
    )


CONVERTER: Rates = {
    ("k", Role.PRODUCTION_T): 100.0,
    ("m", Role.ENERGY_IMPORT_KWH): 2000.0,
    ("k", Role.GAS_M3): 500.0,
    ("r", Role.GAS_M3): 10000.0,
    ("w", Role.ENERGY_EXPORT_KWH): 500.0,
}


def test_credits_subtract_recovered_and_exported_energy_so_a_converter_can_reach_its_level() -> None:
    """Converter, 100 t/h steel. Gross: 2000 kWh x 0.1229 = 245.80 kgce + 500 m3 coke-oven gas x 0.5714 = 285.70
    kgce = 531.50 kgce. Credits: 10 000 m3 converter gas recovered x 0.0084 GJ/m3 x 34.1208 = 2866.15 kgce, and
    500 kWh waste-heat power exported x 0.1229 = 61.45 kgce: 2927.60 kgce. Net 531.50 - 2927.60 = -2396.10 kgce,
    -23.961 kgce/t: between the converter's benchmark -30 and baseline -10 (6.04 to go). Without credits the line
    could never get below +5.3 kgce/t.
    CO2: 2000 kWh x 0.5306 t/MWh = 1.0612 t + coke-oven gas 500 x 0.016746 GJ x 0.01358 x 0.99 x 44/12 = 0.41276 t;
    the converter gas credit is energy only (co2: none), the exported power takes 500 x 0.5306 / 1000 = 0.2653 t
    off: 1.20866 t."""
    out = run({"lines": [converter_line()]}, CONVERTER)
    assert final(out, "energy_gross_kgce").value == pytest.approx(531.50, rel=1e-4)
    assert final(out, "credit_kgce").value == pytest.approx(2927.60, rel=1e-4)
    assert final(out, "energy_kgce").value == pytest.approx(-2396.10, rel=1e-4)
    per_t = final(out, "energy_kgce_per_t")
    assert per_t.value == pytest.approx(-23.961, rel=1e-4)
    assert per_t.grade is Grade.BETWEEN and per_t.distance == pytest.approx(6.039, abs=1e-3)
    assert final(out, "co2_t").value == pytest.approx(1.20866, rel=1e-4)


def test_a_credit_may_reduce_co2_with_its_fuel_factor_or_an_explicit_one() -> None:
    """Exported converter gas with co2: fuel takes its carbon off: 10 000 x 0.0084 x 0.0496 x 0.99 x 44/12 = 15.124 t;
    with co2: factor and 0.0015 tCO2/m3 it is 15.0 t. CO2 = 1.0612 + 0.41276 - 0.2653 - that."""
    base = 1.0612 + 0.41276 - 0.2653
    for treatment, off in (({"co2": "fuel"}, 15.124), ({"co2": "factor", "co2_tco2_per_unit": 0.0015}, 15.0)):
        cfg = converter_line()
        cfg["credits"][0] |= treatment
        out = run({"lines": [cfg]}, CONVERTER)
        assert final(out, "co2_t").value == pytest.approx(base - off, abs=2e-3)


@pytest.mark.parametrize(
    ("credit", "message"),
    [
        ({}, "either carrier"),
        ({"carrier": "heat", "kgce_per_unit": 34.12}, "not both"),
        ({"carrier": "heat", "co2": "factor"}, "co2: factor goes with co2_tco2_per_unit"),
        ({"kgce_per_unit": 0.3, "co2": "fuel"}, "co2: fuel needs the credit's carrier"),
    ],
)
def test_invalid_credits_are_rejected(credit: dict[str, Any], message: str) -> None:
    bad = line(credits=[{"device": "r", "role": "gas_m3"} | credit])
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        KpiSectionConfig.model_validate({"lines": [bad]})


def test_negative_scale_on_an_energy_input_is_refused_in_favour_of_a_credit() -> None:
    electricity = [
        {"device": "m", "role": "energy_import_kwh"},
        {"device": "m", "role": "energy_export_kwh", "scale": -1},
    ]
    credits = [{"device": "m", "role": "gas_m3", "carrier": "converter_gas", "co2": "fuel"}]
    kpi = {
        "lines": [
            {
                "name": "l1",
                "production": [{"device": "m", "role": "production_t"}],
                "electricity": electricity,
                "credits": credits,
            }
        ]
    }
    issues = meter_site_issues(kpi, ["energy_import_kwh", "energy_export_kwh", "production_t", "gas_m3"])
    assert issues == {
        ("kpi", "lines", 0, "electricity", 1, "scale"): "negative scale -1: declare recovered or exported energy "
        "under credits (with its carrier and CO2 treatment) and give the meter a positive scale"
    }


# --- park totals for dual control (item 8) --------------------------------------------------------------------------


def test_park_totals_leave_renewables_and_feedstock_out_of_the_controlled_energy() -> None:
    """Line A: 2000 kWh grid x 0.1229 = 245.80 kgce + 4.5 t raw coal x 714.3 = 3214.35 kgce = 3460.15 kgce; CO2
    1.0612 + 8.38433 = 9.44553 t. Line B: 1000 kWh from the PV plant x 0.1229 = 122.90 kgce (0 tCO2) + 1000 m3 natural
    gas used as feedstock x 1.2143 = 1214.30 kgce (1.97653 t: combustion factor, carbon kept in products not
    deducted). Park: energy 4797.35 kgce; renewable 122.90; feedstock 1214.30; controlled 4797.35 - 122.90 - 1214.30
    = 3460.15 kgce; CO2 11.42206 t; CO2 per tce 11.42206 / 4.79735 = 2.38091 tCO2/tce (per controlled tce 11.42206 /
    3.46015 = 3.30103); renewable share of energy 122.90 / 4797.35 = 0.025618."""
    lines = [
        {
            "name": "a",
            "production": [{"device": "k", "role": "production_t"}],
            "electricity": [{"device": "m", "role": "energy_import_kwh"}],
            "fuels": [{"device": "k", "role": "coal_t", "carrier": "raw_coal"}],
        },
        {
            "name": "b",
            "production": [{"device": "c", "role": "production_t"}],
            "electricity": [{"device": "pv", "role": "energy_import_kwh"}],
            "fuels": [{"device": "c", "role": "gas_m3", "carrier": "natural_gas", "feedstock": True}],
        },
    ]
    rates: Rates = {
        ("k", Role.PRODUCTION_T): 36.0,
        ("m", Role.ENERGY_IMPORT_KWH): 2000.0,
        ("k", Role.COAL_T): 4.5,
        ("c", Role.PRODUCTION_T): 5.0,
        ("pv", Role.ENERGY_IMPORT_KWH): 1000.0,
        ("c", Role.GAS_M3): 1000.0,
    }
    out = run({"lines": lines, "park": {}}, rates, renewable=("pv",))
    want = {
        "energy_kgce": 4797.35,
        "renewable_kgce": 122.90,
        "feedstock_kgce": 1214.30,
        "energy_controlled_kgce": 3460.15,
        "co2_t": 11.42206,
        "co2_t_per_tce": 2.38091,
        "renewable_energy_share": 0.025618,
    }
    for name, value in want.items():
        v = final(out, name, "park")
        assert v.quality is Quality.GOOD and v.value == pytest.approx(value, rel=2e-4), name
    assert final(out, "co2_t_per_tce", "park").detail["co2_t_per_controlled_tce"] == pytest.approx(3.30103, rel=2e-4)


def test_a_park_without_renewables_or_feedstock_reports_zero_parts() -> None:
    """One line, 4.5 t/h raw coal only: renewable and feedstock 0 kgce (good, as covered as the total), controlled =
    energy = 3214.35 kgce, CO2 per tce = 8.3843 / 3.21435 = 2.6084 tCO2/tce."""
    rates: Rates = {("k", Role.PRODUCTION_T): 36.0, ("k", Role.COAL_T): 4.5}
    coal = {"device": "k", "role": "coal_t", "carrier": "raw_coal"}
    out = run({"lines": [line(fuels=[coal])], "park": {"name": "zone"}}, rates)
    assert final(out, "renewable_kgce", "zone").value == 0.0
    assert final(out, "renewable_kgce", "zone").quality is Quality.GOOD
    assert final(out, "energy_controlled_kgce", "zone").value == pytest.approx(3214.35, rel=1e-4)
    assert final(out, "co2_t_per_tce", "zone").value == pytest.approx(2.6084, rel=1e-4)


# --- power factor, demand, baseline (item 7) ------------------------------------------------------------------------


def test_power_factor_adds_reverse_kvarh() -> None:
    """1000 kWh, 300 kvarh import, 200 kvarh export (over-compensation). PF = 1000 / sqrt(1000² + (300 + 200)²) =
    1000 / 1118.034 = 0.894427; counting import only it would be 1000 / sqrt(1000² + 300²) = 0.957826, above the
    0.90 standard of HV industrial users when the bill is below it."""
    rates: Rates = {
        ("m", Role.ENERGY_IMPORT_KWH): 1000.0,
        ("m", Role.REACTIVE_ENERGY_KVARH): 300.0,
        ("m", Role.REACTIVE_ENERGY_EXPORT_KVARH): 200.0,
    }
    pf = {
        "name": "site",
        "active": [{"device": "m", "role": "energy_import_kwh"}],
        "reactive": [{"device": "m", "role": "reactive_energy_kvarh"}],
    }
    both = final(
        run(
            {"power_factor": [pf | {"reactive_export": [{"device": "m", "role": "reactive_energy_export_kvarh"}]}]},
            rates,
        ),
        "power_factor",
    )
    assert both.value == pytest.approx(0.894427, rel=1e-5)
    assert both.detail["reactive_export_kvarh"] == pytest.approx(200.0, rel=1e-5)
    assert "import + export kvarh" in both.reference and "UNCONF" in both.reference
    only = final(run({"power_factor": [pf]}, rates), "power_factor")
    assert only.value == pytest.approx(0.957826, rel=1e-5)


def test_demand_over_the_contracted_value_is_flagged() -> None:
    """A steady 3600 kW against 3000 kW contracted: every 15-min block is 900 kWh = 3600 kW, 600 kW over; flag 1.
    Against 4000 kW: 400 kW under, flag 0 and no reason."""
    rates: Rates = {("m", Role.ENERGY_IMPORT_KWH): 3600.0}
    meters = [{"device": "m", "role": "energy_import_kwh"}]
    over = final(
        run({"demand": [{"name": "site", "meters": meters, "contracted_kw": 3000, "windows": ["1h"]}]}, rates),
        "max_demand_kw",
    )
    assert over.value == pytest.approx(3600.0, rel=1e-6)
    assert over.detail["over_contract"] == 1.0 and over.detail["over_contracted_kw"] == pytest.approx(600.0, rel=1e-6)
    assert over.reason.startswith("over the contracted demand by 600.0 kW")
    under = final(
        run({"demand": [{"name": "site", "meters": meters, "contracted_kw": 4000, "windows": ["1h"]}]}, rates),
        "max_demand_kw",
    )
    assert under.detail["over_contract"] == 0.0 and under.reason == ""


def test_no_cusum_from_a_baseline_below_the_r2_gate() -> None:
    """Quarter-hours with production 10, 20, 10, 20, 10 t and electricity 100, 100, 120, 120, 100 kWh. Least squares
    on the first four: mean x 15, mean y 110, sum (x - 15)(y - 110) = 50 - 50 - 50 + 50 = 0, so slope 0, intercept
    110, R² = 0: below 0.75, no expected energy and no CUSUM, the reason says why; the refit on quarters 2-5 is R² 0
    again. With r2_min 0 the model is fitted on the fourth quarter, the last training period, which gets no CUSUM
    (it used to: expected 110, actual 120, CUSUM +10, a training period judged by its own fit); the CUSUM starts
    with the fifth: expected 110, actual 100, CUSUM -10."""
    prod = [10.0, 20.0, 10.0, 20.0, 10.0]
    kwh = [100.0, 100.0, 120.0, 120.0, 100.0]

    def rates(k: float) -> Rates:
        q = min(int((k - 1) // 900), 4) if k else 0  # the quarter the 2-s step ending at k lies in
        return {("k", Role.PRODUCTION_T): prod[q] * 4, ("m", Role.ENERGY_IMPORT_KWH): kwh[q] * 4}

    baseline: dict[str, Any] = {
        "period": "15m",
        "training_periods": 4,
        "variables": [{"name": "p", "production": True}],
    }
    meter = [{"device": "m", "role": "energy_import_kwh"}]
    out = run({"windows": ["15m"], "lines": [line(electricity=meter, baseline=baseline)]}, rates, seconds=4560)
    assert not [v for v in out if v.name in ("baseline_expected", "baseline_cusum")]
    fourth = [v for v in out if v.name == "baseline_actual" and v.window_start == T0 + 2700]
    assert fourth[0].value == pytest.approx(120.0, rel=1e-6)
    assert fourth[0].reason.startswith("baseline model R² 0.00 below r2_min 0.75: no expected energy and no CUSUM")
    gated_off = baseline | {"r2_min": 0.0}
    out = run({"windows": ["15m"], "lines": [line(electricity=meter, baseline=gated_off)]}, rates, seconds=4560)
    assert not [v for v in out if v.name == "baseline_cusum" and v.window_start <= T0 + 2700]
    cusum = [v for v in out if v.name == "baseline_cusum" and v.window_start == T0 + 3600]
    assert cusum[0].value == pytest.approx(-10.0, abs=1e-6)


def test_check_refuses_a_park_over_unknown_lines_or_named_like_a_line() -> None:
    """'park.energy_kgce' must mean one thing: a park named like a line is refused, and so is an unknown line."""
    kpi = {
        "lines": [
            {
                "name": "kiln",
                "production": [{"device": "m", "role": "production_t"}],
                "electricity": [{"device": "m", "role": "energy_import_kwh"}],
            }
        ],
        "park": {"name": "kiln", "lines": ["kiln", "klin"]},
    }
    issues = meter_site_issues(kpi, ["energy_import_kwh", "production_t"])
    assert issues == {
        ("kpi", "park", "lines", 1): "unknown line 'klin' (did you mean 'kiln'?)",
        ("kpi", "park", "name"): "'kiln' already names a line or another declaration: give the park its own name",
    }
