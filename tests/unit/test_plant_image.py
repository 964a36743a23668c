"""The simulator's register encoder and images, checked against struct (an independent decoder), and the shipped
generic profiles."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.profile import ByteOrder, DataType, PointConfig, ProfileConfig, RegisterKind
from agent.model import Quality, Role
from agent.sources.modbus.codec import compile_point
from simulators.image import RegisterImage, encode_point, load_profile, wrap_value
from simulators.layout import PLANT_LAYOUT, PROFILE_DIR, profile_path
from simulators.plant import PlantModel


def point(dt: str, **kw: object) -> PointConfig:
    return PointConfig.model_validate({"name": "p", "kind": "holding_register", "address": 0, "type": dt, **kw})


def raw_bytes(words: list[int], order: ByteOrder) -> bytes:
    """Undo the byte order by hand: the value's big-endian bytes."""
    data = b"".join(w.to_bytes(2, "big") for w in words)
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        data = b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))
    if order in (ByteOrder.CDAB, ByteOrder.DCBA):
        data = b"".join(data[i : i + 2] for i in range(len(data) - 2, -2, -2))
    return data


@pytest.mark.parametrize("order", list(ByteOrder))
def test_the_four_byte_orders_of_a_32_bit_value(order: ByteOrder) -> None:
    words = encode_point(point("uint32"), order, 0x11223344)
    expected = {
        ByteOrder.ABCD: [0x1122, 0x3344],
        ByteOrder.CDAB: [0x3344, 0x1122],
        ByteOrder.BADC: [0x2211, 0x4433],
        ByteOrder.DCBA: [0x4433, 0x2211],
    }
    assert words == expected[order]


@given(st.floats(allow_nan=False, allow_infinity=False, width=32), st.sampled_from(list(ByteOrder)))
def test_float32_round_trips_in_every_order(value: float, order: ByteOrder) -> None:
    words = encode_point(point("float32"), order, value)
    assert struct.unpack(">f", raw_bytes(words, order))[0] == value


@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(list(ByteOrder)))
def test_float64_round_trips_in_every_order(value: float, order: ByteOrder) -> None:
    words = encode_point(point("float64"), order, value)
    assert struct.unpack(">d", raw_bytes(words, order))[0] == value


@given(st.integers(-(2**15), 2**15 - 1), st.sampled_from([ByteOrder.ABCD, ByteOrder.BADC]))
def test_int16_with_scale_round_trips(raw: int, order: ByteOrder) -> None:
    p = point("int16", scale=0.1, offset=-5.0)
    words = encode_point(p, order, raw * 0.1 - 5.0)
    assert struct.unpack(">h", raw_bytes(words, order))[0] == raw


def test_unsigned_counters_wrap_at_the_types_limit() -> None:
    p16 = point("uint16", scale=0.1)
    assert wrap_value(p16) == pytest.approx(6553.6)
    assert encode_point(p16, ByteOrder.ABCD, 6553.5) == [65535]
    assert encode_point(p16, ByteOrder.ABCD, 6553.6 + 1.0) == [10]
    p32 = point("uint32", scale=0.01)
    assert encode_point(p32, ByteOrder.ABCD, 42_949_672.96 + 0.05) == [0, 5]
    assert wrap_value(point("int32")) is None and wrap_value(point("float32")) is None


def test_bits_bytes_and_strings() -> None:
    assert encode_point(point("bit", bit=3), ByteOrder.ABCD, 1.0) == [8]
    assert encode_point(point("bit", bit=3), ByteOrder.BADC, 1.0) == [8 << 8]
    assert encode_point(point("bit", bit=3), ByteOrder.ABCD, 0.0) == [0]
    assert encode_point(point("uint8_high"), ByteOrder.ABCD, 0x12) == [0x1200]
    assert encode_point(point("int8_low"), ByteOrder.ABCD, -1) == [0x00FF]
    assert encode_point(point("string", length=3), ByteOrder.ABCD, "AB12") == [0x4142, 0x3132, 0]
    assert encode_point(point("string", length=2), ByteOrder.BADC, "AB12xyz") == [0x4241, 0x3231]
    coil = PointConfig.model_validate({"name": "c", "kind": "coil", "address": 0, "type": "bool"})
    assert encode_point(coil, ByteOrder.ABCD, 1.0) == [1]


def test_image_bounds_gaps_holes_and_shared_registers() -> None:
    profile = ProfileConfig.model_validate(
        {
            "profile": "t",
            "address_base": 1,
            "points": [
                {"name": "a", "kind": "holding_register", "address": 11, "type": "uint16", "role": "flow_m3h"},
                {"name": "hi", "kind": "holding_register", "address": 14, "type": "uint8_high"},
                {"name": "lo", "kind": "holding_register", "address": 14, "type": "uint8_low"},
                {"name": "alarm", "kind": "holding_register", "address": 15, "type": "bit", "bit": 0},
                {"name": "gone", "kind": "holding_register", "address": 16, "type": "uint32"},
                {"name": "serial", "kind": "input_register", "address": 1, "type": "string", "length": 2},
                {"name": "t", "kind": "input_register", "address": 3, "type": "int16", "range": [10, 30]},
            ],
        }
    )
    image = RegisterImage("dev", profile, holes={"gone"})
    image.refresh({"flow_m3h": 7.0, "hi": 1.0, "lo": 2.0})
    hr = RegisterKind.HOLDING_REGISTER
    assert image.read(hr, 10, 5) == [7, 0, 0, 0x0102, 0]  # gap reads 0; two bytes share register 13
    assert image.read(hr, 9, 1) is None  # below the lowest point
    assert image.read(hr, 15, 1) is None  # the hole
    assert image.read(hr, 14, 2) is None  # overlaps the hole
    assert image.read(RegisterKind.INPUT_REGISTER, 0, 3) == [0x5349, 0x4D2D, 20]  # "SIM-", range middle
    assert image.read(RegisterKind.COIL, 0, 1) is None
    with pytest.raises(ValueError, match="hole names no point"):
        RegisterImage("dev", profile, holes={"nope"})


GENERIC = sorted(PROFILE_DIR.glob("generic-*.yaml"))


def test_the_shipped_generic_profiles_are_valid_and_cover_every_role() -> None:
    names = {p.stem for p in GENERIC}
    assert names >= {
        "generic-3ph-meter",
        "generic-vfd-motor",
        "generic-boiler",
        "generic-kiln",
        "generic-air-compressor",
        "generic-transformer-monitor",
        "generic-production-counter",
        "generic-flow-meter",
        "generic-pump",
    }
    roles: set[Role] = set()
    types: set[DataType] = set()
    orders: set[ByteOrder] = set()
    kinds: set[RegisterKind] = set()
    for path in GENERIC:
        profile = load_profile(path)
        assert profile.profile == path.stem
        assert profile.source is not None and "generic" in profile.source.document.lower()
        for p in profile.points:
            roles |= {p.role} if p.role else set()
            types.add(p.type)
            orders.add(p.order or profile.byte_order)
            kinds.add(p.kind)
    assert roles == set(Role)
    assert {DataType.FLOAT32, DataType.UINT32, DataType.INT16, DataType.BIT, DataType.BOOL, DataType.STRING} <= types
    assert {ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.BADC} <= orders
    assert kinds == set(RegisterKind)


@pytest.mark.parametrize("device", list(PLANT_LAYOUT))
def test_every_role_point_of_a_devices_profile_has_a_model_value(device: str) -> None:
    model = PlantModel()
    profile = load_profile(profile_path(PLANT_LAYOUT[device][0]))
    assert profile.category == model.kind(device)
    values = model.values(device)
    missing = [p.name for p in profile.points if p.role is not None and p.role.value not in values]
    assert missing == []
    RegisterImage(device, profile).refresh(values)  # every value encodes (no overflow, right types)


def test_load_profile_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: x\naddress_base: 0\npoints: []\n")
    with pytest.raises(ValueError, match="points"):
        load_profile(bad)


def test_the_agents_codec_reads_back_what_the_simulator_encodes_and_finds_it_in_range() -> None:
    """Two independent implementations of the byte-order and scale rules must agree, on every shipped profile,
    over a day of plant values (every 2 h), and the plant stays inside every point's plausible range."""
    model = PlantModel(step_s=60.0)
    for hour in range(0, 24, 2):
        model.advance_to(model.start + hour * 3600.0)
        for device, (profile_name, _unit, _tags) in PLANT_LAYOUT.items():
            profile = load_profile(profile_path(profile_name))
            image = RegisterImage(device, profile)
            values = model.values(device)
            image.refresh(values)
            for p in profile.points:
                width = p.type.registers(p.length)
                words = image.read(p.kind, p.address - profile.address_base, width)
                assert words is not None
                quality, value, reason = compile_point(p, profile.byte_order).decode_registers(words)
                assert quality is Quality.GOOD, (device, p.name, value, reason)
                if p.role is not None:
                    want = values[p.role.value]
                    assert isinstance(value, (int, float))
                    tol = abs(want) * 1e-6 if p.type is DataType.FLOAT32 else abs(p.scale) * 0.5 + 1e-9
                    assert value == pytest.approx(want, abs=tol), (device, p.name)
