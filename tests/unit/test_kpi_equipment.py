"""Equipment formulas against textbook values."""

from __future__ import annotations

import pytest

from agent.kpi.equipment import (
    boiler_heat_gj_per_h,
    fan_air_kw,
    pump_hydraulic_kw,
    steam_enthalpy_kj_kg,
    transformer_loss_kw,
)


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
