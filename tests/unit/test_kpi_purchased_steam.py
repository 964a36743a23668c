"""Purchased steam and hot water by the enthalpy method (issue 18, carbon: "the enthalpy method is offered when steam
pressure and temperature are measured"). Enthalpies by IAPWS-IF97 at hand (the same formulation the boiler's direct
method uses); 1 kgce = 29.3076 MJ (34.1208 kgce/GJ), purchased heat 0.11 tCO2/GJ."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import KpiValue, Quality, Role, Sample
from tests.unit.kpi_site_check import meter_site_issues
from tests.unit.test_kpi_accounting import T0, final, line


def run_steam(fuel: dict[str, Any], levels: dict[Role, float]) -> list[KpiValue]:
    """A line making 10 t/h (a counter of device k) fed by purchased steam metered on device s: the flow, pressure
    and temperatures are constant readings every 2 s; evaluated every minute over one hour and a bit."""
    cfg = KpiSectionConfig.model_validate({"windows": ["1h"], "settle_s": 30, "lines": [line(fuels=[fuel])]})
    eng = KpiEngine(cfg, {d: DeviceInfo(d) for d in ("k", "s")}, "Asia/Shanghai", lambda: T0)
    out: list[KpiValue] = []
    for k in range(0, 3701, 2):
        t = T0 + k
        samples = [Sample("k", "production_t", 100.0 + 10.0 * k / 3600.0, "", Quality.GOOD, t, role=Role.PRODUCTION_T)]
        # the flow last: the derived channel computes when its first input (the flow) is read
        for role, v in sorted(levels.items(), key=lambda rv: rv[0] is Role.STEAM_FLOW_TPH):
            samples.append(Sample("s", role.value, v, "", Quality.GOOD, t, role=role))
        eng.ingest(samples)
        if k % 60 == 0:
            out += eng.evaluate(t)
    return out


STEAM = {"device": "s", "role": "steam_flow_tph", "carrier": "steam_low_pressure", "method": "enthalpy"}


def test_purchased_superheated_steam_is_valued_by_its_measured_enthalpy_rise() -> None:
    """10 t/h of steam at 1.0 MPa gauge (1.101325 MPa abs) and 250 degC, condensate returned at a declared 60 degC.
    IF97: h(1.101325 MPa, 250 degC) = 2,939.43 kJ/kg, h(1.101325 MPa, 60 degC) = 252.06 kJ/kg, rise 2,687.37 kJ/kg.
    Energy received: 10 t/h x 2,687.37 kJ/kg = 26.874 GJ/h, so in one hour energy_kgce = 26.874 x 34.1208 =
    916.95 kgce (the table's 128.6 kgce/t would give 1,286: 40 % more, the supplier's boiler losses) and
    co2_t = 26.874 x 0.11 = 2.9561 t; heat_kj_per_kg = 26.874 GJ / 10 t x 1000 = 2,687.4. The reference states the
    basis. The old code refused the key method."""
    levels = {Role.STEAM_FLOW_TPH: 10.0, Role.STEAM_PRESSURE_MPA: 1.0, Role.STEAM_TEMPERATURE_C: 250.0}
    out = run_steam(STEAM | {"return_temperature_c": 60.0}, levels)
    kgce = final(out, "energy_kgce")
    assert kgce.value == pytest.approx(916.95, rel=2e-4)
    assert kgce.quality is Quality.GOOD
    assert final(out, "co2_t").value == pytest.approx(2.9561, rel=2e-4)
    assert final(out, "heat_kj_per_kg").value == pytest.approx(2687.4, rel=2e-4)
    assert "steam_low_pressure by the enthalpy method: flow x (h(p, T) - h(return)), IAPWS-IF97" in kgce.reference
    assert "return water at the declared 60 degC" in kgce.reference


def test_saturated_steam_read_below_saturation_is_valued_as_dry_saturated_and_the_return_can_be_measured() -> None:
    """Steam at 0.5 MPa gauge (0.601325 MPa abs, saturation 158.92 degC) whose sensor reads 157 degC: IF97 at
    (p, 157 degC) is the liquid (662 kJ/kg), so it is valued as dry saturated steam, h'' = 2,756.23 kJ/kg. Return
    water measured at 20 degC: h(0.601325 MPa, 20 degC) = 84.49 kJ/kg. Rise 2,671.74 kJ/kg; 5 t/h for an hour =
    13.359 GJ = 455.81 kgce."""
    levels = {
        Role.STEAM_FLOW_TPH: 5.0,
        Role.STEAM_PRESSURE_MPA: 0.5,
        Role.STEAM_TEMPERATURE_C: 157.0,
        Role.FEEDWATER_TEMPERATURE_C: 20.0,
    }
    ret = {"device": "s", "role": "feedwater_temperature_c"}
    kgce = final(run_steam(STEAM | {"return_temperature": ret}, levels), "energy_kgce")
    assert kgce.value == pytest.approx(455.81, rel=2e-4)
    assert "the measured return water (s feedwater_temperature_c)" in kgce.reference


def test_the_enthalpy_method_needs_its_points_and_its_return_water() -> None:
    """validate refuses the method where the steam device has no temperature point (at the fuel's method), where
    the carrier is not steam or heat, and the section does not load without a return temperature or with a
    counter for the quantity. The default method is unchanged (the table's coefficient, tested in
    test_kpi_grades)."""
    fuel = {"device": "m", "role": "steam_flow_tph", "carrier": "steam_low_pressure", "method": "enthalpy"}
    section = {"lines": [line(fuels=[fuel | {"return_temperature_c": 60.0}])]}
    issues = meter_site_issues(section, ["steam_flow_tph", "steam_pressure_mpa", "production_t"])
    msg = issues[("kpi", "lines", 0, "fuels", 0, "method")]
    assert msg.startswith("method: enthalpy needs the steam's temperature: device 'm'")
    assert "has no point with role steam_temperature_c" in msg
    coal = fuel | {"carrier": "raw_coal", "return_temperature_c": 60.0}
    issues = meter_site_issues(
        {"lines": [line(fuels=[coal])]},
        ["steam_flow_tph", "steam_pressure_mpa", "steam_temperature_c", "production_t"],
    )
    assert "carrier 'raw_coal' is not one" in issues[("kpi", "lines", 0, "fuels", 0, "method")]
    with pytest.raises(pydantic.ValidationError, match="method: enthalpy needs the return water"):
        KpiSectionConfig.model_validate({"lines": [line(fuels=[fuel])]})
    with pytest.raises(pydantic.ValidationError, match="give the flow in t/h"):
        KpiSectionConfig.model_validate(
            {"lines": [line(fuels=[fuel | {"role": "steam_t", "return_temperature_c": 60.0}])]}
        )
