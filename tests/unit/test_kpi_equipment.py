"""Equipment formulas against textbook values, and the boiler and pump KPIs built from them."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest

from agent.config.kpi import KpiSectionConfig
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.kpi.check import check
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.kpi.equipment import (
    boiler_heat_gj_per_h,
    fan_air_kw,
    plausible,
    pump_hydraulic_kw,
    saturated_steam_enthalpy_kj_kg,
    saturation,
    steam_enthalpy_kj_kg,
    transformer_loss_kw,
)
from agent.model import KpiValue, Quality, Role, Sample


def test_steam_enthalpy_from_iapws_if97() -> None:
    # superheated steam at 1 MPa, 200 degC: 2828 kJ/kg; compressed water at 1 MPa, 100 degC: 420 kJ/kg
    assert steam_enthalpy_kj_kg(1.0, 200.0) == pytest.approx(2828.3, abs=0.5)
    assert steam_enthalpy_kj_kg(1.0, 100.0) == pytest.approx(419.9, abs=0.5)
    assert steam_enthalpy_kj_kg(-1.0, 100.0) is None
    assert steam_enthalpy_kj_kg(1.0, 2000.0) is None


def test_boiler_heat_rate_gauge_and_absolute() -> None:
    absolute = boiler_heat_gj_per_h(10.0, 1.101325, 200.0, 100.0, gauge=False)
    gauge = boiler_heat_gj_per_h(10.0, 1.0, 200.0, 100.0, gauge=True)
    assert absolute == pytest.approx(gauge)
    assert gauge is not None and gauge == pytest.approx(10.0 * (2827.0 - 420.0) / 1000.0, rel=2e-3)


def test_pump_fan_and_transformer() -> None:
    assert pump_hydraulic_kw(360.0, 50.0) == pytest.approx(1000 * 9.80665 * 0.1 * 50 / 1000)
    assert fan_air_kw(3600.0, 0.002) == pytest.approx(2.0)  # 1 m3/s x 2000 Pa
    assert transformer_loss_kw(2500.0, 5000.0, 4.0, 30.0) == pytest.approx(4.0 + 0.25 * 30.0)


# --- saturated steam, the saturation check and plausible efficiencies (issue 13, item 1) -----------------------------

T0 = 1_767_225_600.0
GAS_LHV = 0.0356  # GJ/m3, measured
FW_C = 104.0


def _engine(boiler: dict[str, Any]) -> KpiEngine:
    cfg = KpiSectionConfig.model_validate(
        {
            "windows": ["1h"],
            "settle_s": 30,
            "equipment": [
                {
                    "kind": "boiler",
                    "name": "b1",
                    "device": "b",
                    "pressure_absolute": True,
                    "fuel": {"device": "b", "role": "gas_m3", "carrier": "natural_gas", "lhv_gj_per_unit": GAS_LHV},
                }
                | boiler
            ],
        }
    )
    return KpiEngine(cfg, {"b": DeviceInfo("b")}, "Asia/Shanghai", lambda: T0)


def _run(eng: KpiEngine, p_mpa: float, t_c: float, gas_m3h: float, seconds: int = 3700) -> KpiValue:
    """A boiler at steady state read every 2 s: 10 t/h of steam at (p, t), feedwater 104 degC, gas at gas_m3h."""
    out: list[KpiValue] = []
    for k in range(0, seconds + 1, 2):
        t = T0 + k
        eng.ingest(
            [
                Sample("b", "flow", 10.0, "t/h", Quality.GOOD, t, role=Role.STEAM_FLOW_TPH),
                Sample("b", "p", p_mpa, "MPa", Quality.GOOD, t, role=Role.STEAM_PRESSURE_MPA),
                Sample("b", "t", t_c, "degC", Quality.GOOD, t, role=Role.STEAM_TEMPERATURE_C),
                Sample("b", "fw", FW_C, "degC", Quality.GOOD, t, role=Role.FEEDWATER_TEMPERATURE_C),
                Sample("b", "gas", 1000.0 + gas_m3h * k / 3600, "m3", Quality.GOOD, t, role=Role.GAS_M3),
            ]
        )
        if k % 60 == 0:
            out += eng.evaluate(t)
    return next(v for v in out if v.name == "efficiency" and v.detail["final"] == 1.0)


def test_saturation_properties_from_if97() -> None:
    """IAPWS-IF97 at 1.0 MPa: t_sat 179.89 degC, h' 762.68, h'' 2777.12 kJ/kg (steam tables print 179.9, 762.7,
    2777.1). Wet steam x = 0.98: h = 762.68 + 0.98 x (2777.12 - 762.68) = 762.68 + 1974.15 = 2736.83 kJ/kg."""
    sat = saturation(1.0)
    assert sat is not None
    assert sat[0] == pytest.approx(179.89, abs=0.01)
    assert sat[1] == pytest.approx(762.68, abs=0.05) and sat[2] == pytest.approx(2777.12, abs=0.05)
    assert saturated_steam_enthalpy_kj_kg(1.0, 0.98) == pytest.approx(2736.83, abs=0.05)
    assert saturation(25.0) is None  # above the critical point


def test_superheated_formula_refuses_a_temperature_below_saturation() -> None:
    """At 1.0 MPa (absolute), 179.69 degC is 0.2 K below saturation: IF97 gives the LIQUID's enthalpy there,
    761.80 kJ/kg, and the heat of 10 t/h over 104 degC feedwater (436.64 kJ/kg) would be 10 x (761.80 - 436.64)
    / 1000 = 3.25 GJ/h instead of 10 x (2736.83 - 436.64) / 1000 = 23.00 GJ/h for x = 0.98: 86 % lost. The
    superheated formula returns None; the saturated one gives 23.00 GJ/h."""
    t_c = 179.886 - 0.2
    assert steam_enthalpy_kj_kg(1.0, t_c) == pytest.approx(761.80, abs=0.05)  # what used to be taken
    assert boiler_heat_gj_per_h(10.0, 1.0, t_c, FW_C, gauge=False) is None
    assert boiler_heat_gj_per_h(10.0, 1.0, None, FW_C, gauge=False, dryness=0.98) == pytest.approx(23.002, abs=0.005)


def test_saturated_boiler_efficiency_from_pressure_and_dryness() -> None:
    """Saturated mode, x = 0.98, 1.0 MPa, 10 t/h, feedwater 104 degC: heat 23.002 GJ/h (see above). Gas 700 m3/h x
    0.0356 GJ/m3 = 24.92 GJ/h. Efficiency = 23.002 / 24.92 = 0.9230, good (the steam temperature is not used)."""
    v = _run(_engine({"steam_state": "saturated", "steam_dryness": 0.98}), 1.0, 179.886 - 0.2, 700.0)
    assert v.quality is Quality.GOOD and v.reason == ""
    assert v.value == pytest.approx(23.002 / (700.0 * GAS_LHV), rel=1e-3)


def test_superheated_boiler_at_saturation_is_uncertain_with_a_reason() -> None:
    """Default (superheated) mode with the same saturated readings: before, the efficiency was 3.25 / 24.92 = 0.13
    and good. Now no heat is counted at or below saturation, the value is None and uncertain, and the reason tells
    the technician to declare the boiler saturated."""
    v = _run(_engine({}), 1.0, 179.886 - 0.2, 700.0)
    assert v.value is None and v.quality is Quality.UNCERTAIN
    assert "at or below saturation 100 % of the time" in v.reason and "steam_state: saturated" in v.reason


def test_boiler_efficiency_outside_the_plausible_band_is_uncertain() -> None:
    """Superheated 1.25 MPa / 220 degC: h 2863.2 kJ/kg (IF97), feedwater 104 degC at 1.25 MPa 436.8 kJ/kg, heat
    10 x 2426.4 / 1000 = 24.264 GJ/h. With gas 400 m3/h x 0.0356 = 14.24 GJ/h the efficiency is 24.264 / 14.24 =
    1.704: outside the default 0.50..1.05, so uncertain (a fuel meter scaled wrong, not a good boiler). With
    700 m3/h it is 24.264 / 24.92 = 0.974: good."""
    bad = _run(_engine({}), 1.25, 220.0, 400.0)
    assert bad.value == pytest.approx(1.704, abs=0.002)
    assert bad.quality is Quality.UNCERTAIN and bad.detail["implausible"] == 1.0
    assert "implausible boiler efficiency 1.704: outside 0.5..1.05" in bad.reason
    ok = _run(_engine({}), 1.25, 220.0, 700.0)
    assert ok.quality is Quality.GOOD and ok.value == pytest.approx(0.974, abs=0.002)
    own = _run(_engine({"efficiency_plausible": [0.5, 2.0]}), 1.25, 220.0, 400.0)
    assert own.quality is Quality.GOOD


@pytest.mark.parametrize(
    ("boiler", "message"),
    [
        ({"steam_state": "saturated"}, "steam_state saturated needs steam_dryness"),
        ({"steam_dryness": 0.97}, "steam_dryness applies to steam_state: saturated only"),
        ({"steam_state": "wet"}, "'superheated' or 'saturated'"),
        ({"efficiency_plausible": [0.9, 0.5]}, "0 <= low < high <= 2"),
    ],
)
def test_boiler_config_is_explicit_about_its_steam(boiler: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        _engine(boiler)


def test_pump_efficiency_is_named_unit_efficiency_and_the_old_name_is_a_clear_error() -> None:
    """rho g Q H over electric input is the efficiency of pump and motor together: the KPI is unit_efficiency.
    A formula still using 'p1.efficiency' gets an error naming the new KPI."""
    profile = ProfileConfig.model_validate(
        {
            "profile": "pump",
            "address_base": 0,
            "points": [
                {"name": n, "kind": "input_register", "address": i * 2, "type": "float32", "role": r}
                for i, (n, r) in enumerate([("p", "active_power_kw"), ("q", "flow_m3h"), ("h", "head_m")])
            ],
        }
    )
    site = SiteConfig.model_validate(
        {
            "site": "s",
            "gateway": "g",
            "devices": [{"name": "pump1", "profile": "pump", "host": "127.0.0.1"}],
            "kpi": {
                "equipment": [{"kind": "pump", "name": "p1", "device": "pump1"}],
                "custom": [{"name": "c", "formula": "p1.efficiency * 100"}],
            },
        }
    )
    assert dict(check(site, {"pump": profile})) == {
        ("kpi", "custom", 0, "formula"): "'p1.efficiency' is now 'p1.unit_efficiency': hydraulic power over "
        "electric input is the pump and motor together, not the shaft efficiency"
    }
    assert "p1.unit_efficiency" in KpiEngine.from_site(site, {"pump": profile}, lambda: T0).kpi_names()


@pytest.mark.parametrize(
    ("kind", "value", "implausible"),
    [("motor", 0.995, True), ("motor", 0.95, False), ("pump", 0.97, True), ("fan", 0.04, True), ("pump", 0.7, False)],
)
def test_default_efficiency_bands_per_kind(kind: str, value: float, implausible: bool) -> None:
    """Motor 0.30..0.99 (IE5 motors stay below 0.99), pump or fan unit 0.05..0.95 (pump x motor cannot reach 0.95)."""
    reason = plausible(kind, None)(value, {})
    assert (reason is not None) == implausible
    if reason is not None:
        assert reason.startswith(f"implausible {kind} efficiency {value:.3f}")


def test_a_saturated_boiler_whose_steam_is_measured_well_above_saturation_is_uncertain() -> None:
    """Issue 18: declared saturated (x = 0.98) at 1.0 MPa, steam measured at 300 degC (saturation 179.89 degC,
    120 K above). The saturated formula counts h = 2736.83 kJ/kg; the steam really holds h(1.0 MPa, 300 degC) =
    3051.7 kJ/kg (IF97). Heat counted 10 x (2736.83 - 436.64) / 1000 = 23.00 GJ/h instead of
    10 x (3051.7 - 436.64) / 1000 = 26.15 GJ/h: 12 % low, and the old code published 23.00 / 24.92 = 0.923 as good.
    With a temperature point the declaration is checked: uncertain, reason says superheated 100 % of the time.
    At 185 degC (5 K above saturation, inside the 10 K margin) it stays good."""
    h_true = steam_enthalpy_kj_kg(1.0, 300.0)
    assert h_true == pytest.approx(3051.7, abs=0.5)
    temperature = {"temperature": {"device": "b", "role": "steam_temperature_c"}}
    v = _run(_engine({"steam_state": "saturated", "steam_dryness": 0.98} | temperature), 1.0, 300.0, 700.0)
    assert v.value == pytest.approx(23.002 / (700.0 * GAS_LHV), rel=1e-3)
    assert v.quality is Quality.UNCERTAIN
    assert "above saturation 100 % of the time" in v.reason and "steam_state: superheated" in v.reason
    ok = _run(_engine({"steam_state": "saturated", "steam_dryness": 0.98} | temperature), 1.0, 185.0, 700.0)
    assert ok.quality is Quality.GOOD and ok.reason == ""
