"""CT and PT ratios on a Modbus meter: current x CT, voltage x PT, power and energy x CT x PT, the rest unchanged;
the KPI engine's counter wrap scales with them."""

from __future__ import annotations

import struct

import pytest

from agent.config.load import load_profile, shipped_profile_dir
from agent.config.ratios import unit_ratio
from agent.config.site import ModbusDeviceConfig
from agent.kpi.devices import DeviceInfo
from agent.sources.modbus.plan import build_read_plan


@pytest.mark.parametrize(
    ("unit", "factor"), [("A", 200.0), ("kV", 100.0), ("kWh", 20000.0), ("kvar", 20000.0), ("", 1.0), ("Hz", 1.0)]
)
def test_the_unit_says_which_ratio(unit: str, factor: float) -> None:
    assert unit_ratio(unit, 200.0, 100.0) == factor


def test_a_modbus_meter_on_instrument_transformers_reads_primary_values() -> None:
    profile = load_profile(shipped_profile_dir() / "generic-3ph-meter.yaml")
    device = ModbusDeviceConfig.model_validate(
        {"name": "m", "profile": profile.profile, "host": "h", "ct_ratio": 200, "pt_ratio": 100}
    )
    points = {p.name: p for r in build_read_plan(profile, device).requests for p in r.points}
    high, low = struct.unpack(">HH", struct.pack(">f", 1.5))
    regs = [low, high]  # the profile's byte_order is CDAB (word swap)
    assert points["current_avg"].codec.decode_registers(regs)[1] == 300.0
    assert points["voltage_avg"].codec.decode_registers(regs)[1] == 150.0
    assert points["power_factor"].codec.decode_registers(regs)[1:] == (1.5, "out of range: 1.5 > 1.0")  # unchanged
    energy = points["energy_import"].codec.decode_registers([0, 100])  # 100 x 0.01 kWh on the secondary side
    assert energy[1] == pytest.approx(20000.0)
    assert points["voltage_avg"].config.range == (0, 80000 * 100)
    info = DeviceInfo.from_config(device, profile)
    plain = DeviceInfo.from_config(device.model_copy(update={"ct_ratio": 1.0, "pt_ratio": 1.0}), profile)
    assert info.counter_modulus["energy_import"] == pytest.approx(plain.counter_modulus["energy_import"] * 20000)
