"""Grades an energy manager can sign (issue 18, false grades): an indicator needs its carriers, feedstock is counted
on the indicator's boundary, and electricity credits are valued with the consumption's method. Expectations are
computed by hand in each docstring from the factor table (raw coal 714.3 kgce/t, natural gas 1.2143 kgce/m3,
electricity 0.1229 kgce/kWh equivalent)."""

from __future__ import annotations

import pydantic
import pytest

from agent.config.kpi import KpiSectionConfig
from agent.model import Grade, Quality, Role
from tests.unit.kpi_site_check import meter_site_issues
from tests.unit.test_kpi_accounting import final, line, run

ELEC = ("m", Role.ENERGY_IMPORT_KWH)
PROD = ("k", Role.PRODUCTION_T)


def test_a_clinker_line_with_electricity_only_is_not_graded_and_validate_refuses_it() -> None:
    """A clinker line at 52 kWh/t and no fuel: energy_kgce_per_t = 52 x 0.1229 = 6.3908 kgce/t, which the old code
    graded "benchmark" (<= 100) though a real kiln burns about 100 kgce/t of coal. The value is still published,
    without a grade, its reason naming the missing fuels; the kpi check refuses the line at its fuels."""
    section = {"lines": [line(indicator="cement_clinker", electricity=[{"device": "m", "role": "energy_import_kwh"}])]}
    v = final(run(section, {PROD: 100.0, ELEC: 5200.0}), "energy_kgce_per_t")
    assert v.value == pytest.approx(6.3908, rel=1e-4)
    assert v.grade is None and v.quality is Quality.GOOD
    assert v.reason.startswith("not graded: indicator 'cement_clinker' (kgce/t) needs the line's fuels")
    issues = meter_site_issues(
        {"lines": [line(indicator="cement_clinker", electricity=[{"device": "m", "role": "energy_import_kwh"}])]},
        ["energy_import_kwh", "production_t"],
    )
    assert "needs the line's fuels: list them under fuels, or set no_fuel: true" in issues[("kpi", "lines", 0, "fuels")]


def test_no_fuel_is_an_explicit_statement_with_a_reason() -> None:
    """An all-electric EAF (eaf_steel_70t_and_over, 61 / 72 kgce/t) at 500 kWh/t: 500 x 0.1229 = 61.45 kgce/t,
    between the levels, graded because the line says no_fuel with its reason (shown in the reference). Without the
    reason the section does not load."""
    eaf = line(
        indicator="eaf_steel_70t_and_over",
        electricity=[{"device": "m", "role": "energy_import_kwh"}],
        no_fuel=True,
        no_fuel_reason="all-electric furnace, no oxy-fuel burners",
    )
    v = final(run({"lines": [eaf]}, {PROD: 100.0, ELEC: 50000.0}), "energy_kgce_per_t")
    assert v.value == pytest.approx(61.45, rel=1e-4)
    assert v.grade is Grade.BETWEEN and "no fuel: all-electric furnace" in v.reference
    with pytest.raises(pydantic.ValidationError, match="no_fuel: true needs no_fuel_reason"):
        KpiSectionConfig.model_validate({"lines": [line(no_fuel=True)]})


def test_semi_coke_is_graded_without_its_feed_coal_as_its_indicator_defines() -> None:
    """Semi-coke 10 t/h from 16 t/h of raw coal flagged feedstock (16 x 714.3 = 11,428.8 kgce/h), heated with
    900 m3/h of natural gas (900 x 1.2143 = 1,092.87 kgce/h), 2,500 kWh/h (x 0.1229 = 307.25 kgce/h). Counting the
    coal: (11,428.8 + 1,092.87 + 307.25) / 10 = 1,282.89 kgce/t, which the old code graded below baseline (210).
    The semi_coke row excludes feedstock: (1,092.87 + 307.25) / 10 = 140.01 kgce/t, benchmark (<= 160); the feed
    coal's 1,142.88 kgce/t is in detail. energy_kgce (the line's total for the park) still counts it."""
    section = {
        "lines": [
            line(
                indicator="semi_coke",
                electricity=[{"device": "m", "role": "energy_import_kwh"}],
                fuels=[
                    {"device": "f", "role": "coal_t", "carrier": "raw_coal", "feedstock": True},
                    {"device": "g", "role": "gas_m3", "carrier": "natural_gas"},
                ],
            )
        ]
    }
    rates = {PROD: 10.0, ELEC: 2500.0, ("f", Role.COAL_T): 16.0, ("g", Role.GAS_M3): 900.0}
    values = run(section, rates)
    v = final(values, "energy_kgce_per_t")
    assert v.value == pytest.approx(140.012, rel=1e-4)
    assert v.grade is Grade.BENCHMARK
    assert v.detail["feedstock_kgce_per_t"] == pytest.approx(1142.88, rel=1e-4)
    assert "feedstock excluded as the indicator defines it" in v.reference
    assert final(values, "energy_kgce").value == pytest.approx(12828.92, rel=1e-4)


def test_exported_electricity_is_credited_with_the_method_that_valued_the_consumption() -> None:
    """equal_value at 0.300 kgce/kWh: 1,000 kWh/h in, 400 kWh/h exported (TRT, credit of carrier electricity).
    Old: 1,000 x 0.300 - 400 x 0.1229 = 250.84 kgce/h, so the result depended on where the meters were. Now both at
    0.300: 1,000 x 0.3 - 400 x 0.3 = 180.0 kgce/h; beside it, labelled, the equivalent value
    (1,000 - 400) x 0.1229 = 73.74 kgce/h; per tonne (10 t/h) 18.0 and 7.374."""
    section = {
        "factors": {"electricity_method": "equal_value", "electricity_equal_value_kgce_per_kwh": 0.3},
        "lines": [
            line(
                electricity=[{"device": "m", "role": "energy_import_kwh"}],
                credits=[{"device": "t", "role": "energy_export_kwh", "carrier": "electricity", "co2": "grid"}],
            )
        ],
    }
    values = run(section, {PROD: 10.0, ELEC: 1000.0, ("t", Role.ENERGY_EXPORT_KWH): 400.0})
    total = final(values, "energy_kgce")
    assert total.value == pytest.approx(180.0, rel=1e-6)
    assert total.detail["equivalent_kgce"] == pytest.approx(73.74, rel=1e-6)
    assert "equal value 0.3 kgce/kWh, consumption and credits alike" in total.reference
    per_t = final(values, "energy_kgce_per_t")
    assert per_t.value == pytest.approx(18.0, rel=1e-6)
    assert per_t.detail["equivalent_kgce_per_t"] == pytest.approx(7.374, rel=1e-6)


# --- carbon fit for a park or ETS report ----------------------------------------------------------------------------


def clinker_line(**kw: object) -> dict[str, object]:
    return line(
        electricity=[{"device": "m", "role": "energy_import_kwh"}],
        fuels=[{"device": "f", "role": "coal_t", "carrier": "raw_coal"}],
        **kw,
    )


def test_a_clinker_line_publishes_process_co2_beside_its_energy_co2() -> None:
    """100 t/h of clinker, 10 t/h of raw coal (20.934 GJ/t x 0.0261 x 0.93 x 44/12 = 1.8632 tCO2/t), 5,000 kWh/h at
    the 2023 national grid factor 0.5306: energy CO2 18.632 + 2.653 = 21.285 tCO2/h. Calcination with the default
    clinker CaO 65 %: 0.65 x 44.01/56.08 = 0.51010 tCO2/t, 51.010 tCO2/h; with a measured CaO 66 % and MgO 1.5 %:
    0.66 x 0.784772 + 0.015 x 1.092060 = 0.534331 tCO2/t. The total is their sum; the old code had no process CO2."""
    rates = {PROD: 100.0, ELEC: 5000.0, ("f", Role.COAL_T): 10.0}
    values = run({"lines": [clinker_line(process_co2={"kind": "clinker"})]}, rates)
    energy = final(values, "co2_t")
    assert energy.value == pytest.approx(10 * 1.8632 + 5.0 * 0.5306, rel=1e-4)
    assert energy.reference.startswith("energy CO2: fuel combustion and purchased electricity and heat")
    process = final(values, "co2_process_t")
    assert process.value == pytest.approx(51.010, rel=1e-4)
    assert "CaO 65 %" in process.reference and "IPCC 2006 default composition" in process.reference
    assert final(values, "co2_total_t").value == pytest.approx((process.value or 0.0) + (energy.value or 0.0), rel=1e-9)
    measured = run({"lines": [clinker_line(process_co2={"kind": "clinker", "cao_pct": 66, "mgo_pct": 1.5})]}, rates)
    assert final(measured, "co2_process_t_per_t").value == pytest.approx(0.534331, rel=1e-5)


def test_feedstock_carbon_is_an_upper_bound_unless_the_retained_share_is_declared() -> None:
    """16 t/h of raw coal as feedstock, nothing else: counted as combusted 16 x 1.8632 = 29.811 tCO2/h, marked an
    upper bound in the reason (the old code published it without a word). With carbon_retained_share 0.6 (carbon
    left in the semi-coke): 29.811 x 0.4 = 11.925 tCO2/h, no upper-bound reason."""
    feed = {"device": "f", "role": "coal_t", "carrier": "raw_coal", "feedstock": True}
    rates = {PROD: 10.0, ("f", Role.COAL_T): 16.0}
    bound = final(run({"lines": [line(fuels=[feed])]}, rates), "co2_t")
    assert bound.value == pytest.approx(16 * 1.8632, rel=1e-4)
    assert bound.reason.startswith("upper bound: the carbon of feedstock raw_coal is counted as combusted")
    kept = final(run({"lines": [line(fuels=[feed | {"carbon_retained_share": 0.6}])]}, rates), "co2_t")
    assert kept.value == pytest.approx(16 * 1.8632 * 0.4, rel=1e-4) and kept.reason == ""


def test_a_bof_whose_credits_exceed_its_emissions_says_why_its_co2_is_negative() -> None:
    """A converter: 2,000 kWh/h (x 0.5306 / 1000 = 1.061 tCO2/h) and 10,000 m3/h of converter gas exported with
    co2: fuel (its carbon leaves with it: 84.00 GJ/10^4 m3 x 0.0496 x 0.99 x 44/12 = 1.5123 tCO2 per 1,000 m3,
    15.123 tCO2/h): net 1.061 - 15.123 = -14.06 tCO2/h. Negative, with the reason naming the credit."""
    bof = line(
        electricity=[{"device": "m", "role": "energy_import_kwh"}],
        credits=[{"device": "g", "role": "gas_m3", "carrier": "converter_gas", "co2": "fuel"}],
    )
    v = final(run({"lines": [bof]}, {PROD: 100.0, ELEC: 2000.0, ("g", Role.GAS_M3): 10000.0}), "co2_t")
    assert v.value is not None and v.value < 0
    assert v.value == pytest.approx(2.0 * 0.5306 - 10000 * 0.0084 * 0.0496 * 0.99 * 44 / 12, rel=1e-3)
    assert "negative: the CO2 of the energy delivered out (converter_gas) exceeds the line's own emissions" in v.reason


def test_purchased_steam_states_its_basis_and_offers_the_enthalpy_method() -> None:
    """10 t/h of purchased low-pressure steam at the table's 128.6 kgce/t = 1,286 kgce/h (3.769 GJ/t, more than the
    steam's enthalpy: it includes the supplying boiler's losses), which the reference now says, with how to use the
    enthalpy method. Declared lhv_gj_per_unit 2.60 GJ/t (h(0.5 MPa, 160 degC) - h(20 degC) by IF97, about 2.76 -
    0.08): 10 x 2.60 x 34.1208 = 887.14 kgce/h, labelled "enthalpy method"."""
    steam = {"device": "s", "role": "steam_t", "carrier": "steam_low_pressure"}
    rates = {PROD: 10.0, ("s", Role.STEAM_T): 10.0}
    table = final(run({"lines": [line(fuels=[steam])]}, rates), "energy_kgce")
    assert table.value == pytest.approx(1286.0, rel=1e-6)
    assert "steam_low_pressure at its reference coefficient 128.6 kgce/t (3.769 GJ/t" in table.reference
    assert "declare method: enthalpy (flow x (h(p, T) - h(return)), IAPWS-IF97)" in table.reference
    measured = final(run({"lines": [line(fuels=[steam | {"lhv_gj_per_unit": 2.6}])]}, rates), "energy_kgce")
    assert measured.value == pytest.approx(10 * 2.6 * 1e6 / 29307.6, rel=1e-6)
    assert "by its declared enthalpy rise 2.6 GJ/t (enthalpy method)" in measured.reference
