"""The shipped profile library (device_profiles/): every profile loads clean, is listed in the README, gives each
KPI role the role's unit, and is decoded by the agent's Modbus source exactly as the simulator encoded it.

The end-to-end test serves every profile from one ModbusSimulator (a Modbus TCP gateway on a loopback port, one
unit id per profile, each unit showing a plant device of the profile's category), loads a site file naming all
profiles through the project's loader, polls each device once with ``build_modbus_sources`` and compares every
sample with the value the plant model gave the simulator, re-quantised here by an encoder of our own (the raw
register value wrapped at the type's width, as the simulator documents, then ``raw * scale + offset``).
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import pytest

from agent.config.load import load_profile_checked, load_site
from agent.config.profile import DataType, PointConfig, ProfileConfig
from agent.model import Quality, Role, Sample
from agent.sources.modbus.codec import compile_point
from agent.sources.modbus.source import build_modbus_sources
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel, SteppedClock

LIBRARY = Path(__file__).resolve().parents[2] / "device_profiles"
# Modbus profiles; the DL/T 645 ones (dlt645-*) are checked by tests/integration/test_dlt645_*.py
PROFILE_FILES = sorted(p for p in LIBRARY.glob("*.yaml") if not p.stem.startswith("dlt645-"))

# Unit a point with this role must be delivered in ("" = dimensionless).
ROLE_UNIT: dict[Role, str] = {
    Role.ENERGY_IMPORT_KWH: "kWh",
    Role.ENERGY_EXPORT_KWH: "kWh",
    Role.REACTIVE_ENERGY_KVARH: "kvarh",
    Role.REACTIVE_ENERGY_EXPORT_KVARH: "kvarh",
    Role.ACTIVE_POWER_KW: "kW",
    Role.REACTIVE_POWER_KVAR: "kvar",
    Role.APPARENT_POWER_KVA: "kVA",
    Role.POWER_FACTOR: "",
    Role.VOLTAGE_V: "V",
    Role.CURRENT_A: "A",
    Role.FREQUENCY_HZ: "Hz",
    Role.PRODUCTION_T: "t",
    Role.PRODUCTION_RATE_TPH: "t/h",
    Role.COAL_T: "t",
    Role.COAL_FEED_TPH: "t/h",
    Role.GAS_M3: "m3",
    Role.GAS_FLOW_M3H: "m3/h",
    Role.STEAM_T: "t",
    Role.STEAM_FLOW_TPH: "t/h",
    Role.STEAM_PRESSURE_MPA: "MPa",
    Role.STEAM_TEMPERATURE_C: "°C",
    Role.FEEDWATER_TEMPERATURE_C: "°C",
    Role.HEAT_RECOVERED_GJ: "GJ",
    Role.WATER_M3: "m3",
    Role.WATER_FLOW_M3H: "m3/h",
    Role.SPEED_RPM: "rpm",
    Role.SHAFT_POWER_KW: "kW",
    Role.AIR_FLOW_M3MIN: "m3/min",
    Role.DISCHARGE_PRESSURE_MPA: "MPa",
    Role.FLOW_M3H: "m3/h",
    Role.HEAD_M: "m",
    Role.RUN_HOURS_H: "h",
    Role.TEMPERATURE_C: "°C",
}

# What a profile of each category must give the KPI engine: at least one role of every group.
REQUIRED_ROLES: dict[str, tuple[frozenset[Role], ...]] = {
    "energy_meter": (frozenset({Role.ENERGY_IMPORT_KWH}),),
    "vfd": (frozenset({Role.ACTIVE_POWER_KW}), frozenset({Role.SPEED_RPM, Role.CURRENT_A})),
    "flow_meter": (
        frozenset({Role.WATER_M3, Role.STEAM_T, Role.GAS_M3}),
        frozenset({Role.WATER_FLOW_M3H, Role.STEAM_FLOW_TPH, Role.GAS_FLOW_M3H}),
    ),
}

# Plant device shown by a profile of each category; profiles whose roles live elsewhere are named explicitly.
DEVICE_FOR_CATEGORY = {
    "energy_meter": "kiln1-meter",
    "vfd": "raw-mill-vfd",
    "flow_meter": "water-meter",
    "kiln": "kiln1",
    "boiler": "boiler1",
    "compressor": "compressor1",
    "pump": "pump1",
    "transformer": "transformer1",
    "production_counter": "cement-counter",
    "motor": "raw-mill-vfd",
    "fan": "pump1",
    "furnace": "kiln1",
    "other": "kiln1-meter",
}
DEVICE_FOR_PROFILE = {"tfm-vt222": "boiler1", "fuxin-gas-flow-totalizer": "boiler1"}

_INT_BITS = {
    DataType.INT16: (16, True),
    DataType.UINT16: (16, False),
    DataType.INT32: (32, True),
    DataType.UINT32: (32, False),
    DataType.INT64: (64, True),
    DataType.UINT64: (64, False),
}
_FLOAT_CODES = {DataType.FLOAT16: "e", DataType.FLOAT32: "f", DataType.FLOAT64: "d"}


def _load(path: Path) -> ProfileConfig:
    return load_profile_checked(path)[0]


def _device_for(profile: ProfileConfig) -> str:
    return DEVICE_FOR_PROFILE.get(profile.profile, DEVICE_FOR_CATEGORY[profile.category])


def _shown_value(point: PointConfig, values: dict[str, float], device: str) -> float | str:
    """The value the simulator puts in the point's registers (the rule documented in simulators/image.py)."""
    if point.role is not None and point.role.value in values:
        return values[point.role.value]
    if point.name in values:
        return values[point.name]
    if point.type is DataType.STRING:
        return f"SIM-{device}"
    if point.type in (DataType.BOOL, DataType.BIT):
        return 0.0
    if point.range is not None:
        return (point.range[0] + point.range[1]) / 2.0
    return 0.0


def _requantised(point: PointConfig, value: float | str) -> float | bool | str:
    """What a correct decoder must read back: the raw register value as stored, then raw * scale + offset."""
    if point.type is DataType.STRING:
        assert point.length is not None
        return str(value)[: point.length * 2].rstrip("\x00 ")
    assert isinstance(value, float | int)
    if point.type in (DataType.BOOL, DataType.BIT):
        return bool(value)
    raw = (value - point.offset) / point.scale
    if point.type in _FLOAT_CODES:
        code = ">" + _FLOAT_CODES[point.type]
        stored = float(struct.unpack(code, struct.pack(code, raw))[0])
    else:
        bits, signed = _INT_BITS.get(point.type, (8, point.type in (DataType.INT8_HIGH, DataType.INT8_LOW)))
        wrapped = round(raw) % (1 << bits)
        if signed and wrapped >= 1 << (bits - 1):
            wrapped -= 1 << bits
        stored = float(wrapped)
    return stored * point.scale + point.offset


def _expected_quality(point: PointConfig, value: float | bool | str) -> Quality:
    if isinstance(value, float) and point.range is not None and not point.range[0] <= value <= point.range[1]:
        return Quality.UNCERTAIN
    return Quality.GOOD


def _matches(decoded: object, want: float | bool | str) -> bool:
    if isinstance(want, bool | str):
        return decoded == want
    return isinstance(decoded, int | float) and math.isclose(float(decoded), want, rel_tol=1e-12, abs_tol=1e-9)


def test_library_has_the_profiles_of_issue_8() -> None:
    names = {p.stem for p in PROFILE_FILES}
    wanted = {
        "acrel-adl400",
        "acrel-adw300",
        "acrel-pz96l",
        "chint-dtsu666",
        "schneider-pm5000",
        "schneider-iem3000",
        "siemens-pac3200",
        "siemens-pac3220",
        "abb-m4m",
        "eastron-sdm630",
        "janitza-umg604",
        "abb-acs880",
        "siemens-sinamics-g120",
        "danfoss-fc302",
        "siemens-mag8000",
        "tfm-vt222",
        "fuxin-gas-flow-totalizer",
    }
    assert wanted <= names, f"missing profiles: {sorted(wanted - names)}"


@pytest.mark.parametrize("path", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_profile_loads_without_errors_or_warnings(path: Path) -> None:
    profile, warnings = load_profile_checked(path)
    assert profile.profile == path.stem, "a profile's file is named <profile>.yaml"
    assert warnings == ()


@pytest.mark.parametrize("path", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_profile_cites_its_source_and_gives_each_role_its_unit(path: Path) -> None:
    profile = _load(path)
    assert profile.source is not None and profile.source.document, "every profile names the document it follows"
    if not profile.profile.startswith("generic-"):
        assert profile.vendor and profile.model
        assert profile.source.version, "say which version, or 'not confirmed'"
        assert profile.source.notes, "say where the map was taken from and what could not be checked"
    roles = [p.role for p in profile.points if p.role is not None]
    assert len(roles) == len(set(roles)), "one point per role, so the KPI engine's input is unambiguous"
    for point in profile.points:
        if point.role is not None:
            assert point.unit == ROLE_UNIT[point.role], f"{point.name}: role {point.role.value} is in its suffix unit"
    present = set(roles)
    for group in REQUIRED_ROLES.get(profile.category, ()):
        assert present & group, f"{profile.category} profile needs one of {sorted(r.value for r in group)}"


def test_readme_lists_exactly_the_profiles_in_the_folder() -> None:
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9][a-z0-9_.-]*)` \|", readme, flags=re.MULTILINE))
    assert listed == {p.stem for p in PROFILE_FILES}


# Register contents with the engineering value a source states for them: (profile, point, registers, value,
# tolerance of the stated value, where the pair is stated). Decoded with the agent's codec through the profile.
DOCUMENTED_VECTORS = [
    ("fuxin-gas-flow-totalizer", "working_volume_m3", [0x4B3C, 0x6156], 12345686.0, 0.0, "FXGasFlow sample reply"),
    ("fuxin-gas-flow-totalizer", "gas_m3", [0x449B, 0x6392], 1243.1116, 5e-4, "FXGasFlow sample reply"),
    ("fuxin-gas-flow-totalizer", "gas_flow_m3h", [0x4022, 0x0C4A], 2.53, 5e-3, "FXGasFlow sample reply"),
    ("fuxin-gas-flow-totalizer", "pressure_kpa", [0x42CC, 0x6C8B], 102.2, 0.05, "FXGasFlow sample reply"),
    ("tfm-vt222", "steam_t", [0x42C8, 0x0000], 100.0, 0.0, "VT-222 Quick Manual: 100 is 42C80000"),
    ("danfoss-fc302", "current_a", [0x0000, 524], 5.24, 1e-9, "FC 300 Design Guide: 5.24 A read as 524"),
    ("acrel-adl400", "energy_import_kwh", [0x0000, 56789], 567.89, 1e-9, "SmartEVSE ADL400-D vector"),
    ("acrel-adl400", "current_l2_a", [1600], 16.0, 1e-9, "SmartEVSE ADL400-D vector (phase B)"),
    ("acrel-adl400", "active_power_kw", [0x0000, 3680], 3.68, 1e-9, "SmartEVSE ADL400-D vector (W)"),
    (
        "acrel-adl400",
        "active_power_kw",
        [0xFFFF, 0xF1A0],
        -3.68,
        1e-9,
        "int32 two's complement, as SmartEVSE decodes it",
    ),
    ("siemens-sinamics-g120", "current_a", [16383], 163.83, 1e-9, "G120 function manual: 0...163.83 A"),
    ("siemens-sinamics-g120", "active_power_kw", [32767], 327.67, 1e-9, "G120 function manual: 0...327.67 kW"),
    ("siemens-sinamics-g120", "speed_rpm", [(-16250) & 0xFFFF], -16250.0, 0.0, "G120 function manual: -16250"),
    ("siemens-sinamics-g120", "output_frequency_hz", [(-32768) & 0xFFFF], -327.68, 1e-9, "G120: -327.68 Hz"),
]


@pytest.mark.parametrize(
    ("profile_name", "point_name", "registers", "value", "tol", "where"),
    DOCUMENTED_VECTORS,
    ids=[f"{v[0]}.{v[1]}={v[3]}" for v in DOCUMENTED_VECTORS],
)
def test_documented_register_vectors_decode_to_the_documented_value(
    profile_name: str, point_name: str, registers: list[int], value: float, tol: float, where: str
) -> None:
    profile = _load(LIBRARY / f"{profile_name}.yaml")
    point = next(p for p in profile.points if p.name == point_name)
    quality, decoded, reason = compile_point(point, profile.byte_order).decode_registers(registers)
    assert quality is Quality.GOOD, reason
    assert isinstance(decoded, int | float)
    assert abs(decoded - value) <= tol + 1e-9 * abs(value), f"{where}: decoded {decoded}, source says {value}"


def _site_yaml(tmp_path: Path, port: int, profiles: list[ProfileConfig]) -> Path:
    lines = [
        "site: profile-library",
        "gateway: gw1",
        f"state_dir: {tmp_path / 'state'}",
        "buses:",
        "  - name: sim",
        "    transport: tcp_gateway",
        "    host: 127.0.0.1",
        f"    port: {port}",
        "devices:",
    ]
    for unit_id, profile in enumerate(profiles, start=1):
        lines += [
            f"  - name: {profile.profile}",
            f"    profile: {profile.profile}",
            "    bus: sim",
            f"    unit_id: {unit_id}",
            "    timeout_ms: 3000",
        ]
    path = tmp_path / "site.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_every_profile_is_served_and_decoded_as_encoded(tmp_path: Path) -> None:
    profiles = [_load(p) for p in PROFILE_FILES]
    model = PlantModel(seed=1)
    clock = SteppedClock(model.start + 3600.0)  # an hour in: counters have moved, the kiln line is running
    units = [
        SimUnit(_device_for(pr), path, unit_id)
        for unit_id, (pr, path) in enumerate(zip(profiles, PROFILE_FILES, strict=True), start=1)
    ]
    async with ModbusSimulator(model, units, "tcp", clock=clock) as sim:
        loaded = load_site(_site_yaml(tmp_path, sim.port, profiles))
        (source,) = build_modbus_sources(loaded)
        try:
            results = {poller.name: await source.poll_once(poller) for poller in source.pollers}
        finally:
            if source.link is not None:
                await source.link.close()
        values = {pr.profile: model.values(_device_for(pr)) for pr in profiles}
    assert set(sim.served) <= {1, 2, 3, 4}, "the agent only reads (function codes 1-4)"

    failures: list[str] = []
    for profile in profiles:
        result = results[profile.profile]
        samples: dict[str, Sample] = {s.point: s for s in result.samples}
        assert set(samples) == {p.name for p in profile.points}, profile.profile
        device = _device_for(profile)
        for point in profile.points:
            sample = samples[point.name]
            shown = _shown_value(point, values[profile.profile], device)
            want = _requantised(point, shown)
            where = f"{profile.profile}.{point.name} (shown {shown!r})"
            if sample.quality is Quality.BAD:
                failures.append(f"{where}: bad, {sample.reason}")
                continue
            if not _matches(sample.value, want):
                failures.append(f"{where}: decoded {sample.value!r}, expected {want!r}")
            if sample.quality is not _expected_quality(point, want):
                failures.append(f"{where}: quality {sample.quality.value} ({sample.reason})")
            if (sample.unit, sample.role) != (point.unit, point.role):
                failures.append(f"{where}: unit/role {sample.unit!r}/{sample.role} != {point.unit!r}/{point.role}")
    assert not failures, "\n".join(failures)


async def test_meter_roles_carry_the_plant_values_within_register_resolution(tmp_path: Path) -> None:
    """Scales and units are right, not just self-consistent: each energy meter's role values, decoded from the
    wire, equal the plant model's values for those roles to within one register step (no wrap at these sizes)."""
    meters = [(p, _load(p)) for p in PROFILE_FILES if _load(p).category == "energy_meter"]
    model = PlantModel(seed=1)
    clock = SteppedClock(model.start + 3600.0)
    units = [SimUnit("kiln1-meter", path, i) for i, (path, _pr) in enumerate(meters, start=1)]
    async with ModbusSimulator(model, units, "tcp", clock=clock) as sim:
        loaded = load_site(_site_yaml(tmp_path, sim.port, [pr for _path, pr in meters]))
        (source,) = build_modbus_sources(loaded)
        try:
            results = {poller.name: await source.poll_once(poller) for poller in source.pollers}
        finally:
            if source.link is not None:
                await source.link.close()
        truth = model.values("kiln1-meter")
    for _path, profile in meters:
        for sample in results[profile.profile].samples:
            if sample.role is None:
                continue
            point = next(p for p in profile.points if p.name == sample.point)
            step = point.scale if point.type in _INT_BITS else abs(truth[sample.role.value]) * 2.0**-23
            assert isinstance(sample.value, (int, float))
            assert abs(sample.value - truth[sample.role.value]) <= step / 2 + 1e-9, (
                f"{profile.profile}.{sample.point}: {sample.value} vs plant {truth[sample.role.value]}"
            )
