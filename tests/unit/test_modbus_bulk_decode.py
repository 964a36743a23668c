"""A read's reply decoded in one unpack (codec.bulk_struct, DevicePoller._decode) gives exactly the samples the
per-point decode gives: every type, byte order, scale, offset, range and gap, any payload bytes (NaN, inf, out of
range), and reads the bulk path does not take (swapped orders, bits, bytes, strings) still decode point by point."""

from __future__ import annotations

import math
import struct
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.profile import ByteOrder, DataType, ProfileConfig
from agent.config.site import ModbusDeviceConfig
from agent.model import Quality, Sample
from agent.sources.modbus.codec import bulk_struct, swap_bytes
from agent.sources.modbus.device import DevicePoller
from agent.sources.modbus.plan import build_read_plan

NUMBERS = [
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
    DataType.FLOAT32,
    DataType.FLOAT64,
]
OTHERS = [DataType.UINT8_HIGH, DataType.INT8_LOW, DataType.BIT, DataType.STRING]


@st.composite
def profiles(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 12))
    order = draw(st.sampled_from(list(ByteOrder)) if draw(st.booleans()) else st.just(ByteOrder.ABCD))
    points: list[dict[str, Any]] = []
    address = 0
    for i in range(n):
        dt = draw(st.sampled_from(NUMBERS + OTHERS) if draw(st.integers(0, 9)) == 0 else st.sampled_from(NUMBERS))
        p: dict[str, Any] = {"name": f"p{i}", "kind": "holding_register", "address": address, "type": dt}
        if dt is DataType.STRING:
            p["length"] = 4
        if dt is DataType.BIT:
            p["bit"] = draw(st.integers(0, 15))
        if dt in NUMBERS and draw(st.booleans()):
            p["scale"] = draw(st.sampled_from([0.1, 0.01, 2.0, 1.0, 0.5]))
            p["offset"] = draw(st.sampled_from([0.0, -40.0, 1.5]))
        if dt in NUMBERS and draw(st.integers(0, 3)) == 0:
            p["range"] = [-1000.0, 1000.0]
        points.append(p)
        width = {"int64": 4, "uint64": 4, "float64": 4, "int32": 2, "uint32": 2, "float32": 2, "string": 2}
        address += width.get(str(dt), 1) + draw(st.integers(0, 2))  # gaps the plan reads through
    return {"profile": "t", "category": "energy_meter", "address_base": 0, "byte_order": order, "points": points}


def _same(a: Sample, b: Sample) -> bool:
    if (a.point, a.unit, a.quality, a.ts, a.reason, a.role, a.device) != (
        b.point,
        b.unit,
        b.quality,
        b.ts,
        b.reason,
        b.role,
        b.device,
    ):
        return False
    if isinstance(a.value, float) and isinstance(b.value, float):
        return a.value == b.value and math.copysign(1, a.value) == math.copysign(1, b.value)
    return type(a.value) is type(b.value) and a.value == b.value


@settings(max_examples=300, deadline=None)
@given(profile=profiles(), seed=st.binary(min_size=64, max_size=64))
def test_bulk_decode_gives_the_per_point_samples(profile: dict[str, Any], seed: bytes) -> None:
    prof = ProfileConfig.model_validate(profile)
    plan = build_read_plan(prof, ModbusDeviceConfig(name="d", profile="t", host="h"))
    poller = DevicePoller(ModbusDeviceConfig(name="d", profile="t", host="h"), plan, "h:502", time.time)
    ts = 1700000000.25
    for request in plan.requests:
        data = (seed * (request.count // 32 + 2))[: request.count * 2]
        swapped = swap_bytes(data)
        got: dict[str, Sample] = {}
        poller._decode(got, request, data, ts)
        for p in request.points:
            quality, value, reason = p.codec.decode(data, swapped, p.offset)
            want = Sample("d", p.name, value, p.config.unit, quality, ts, reason, p.config.role)
            assert _same(got[p.name], want), (p.name, got[p.name], want)


def test_a_plain_float32_read_is_one_unpack_and_nan_is_bad() -> None:
    points = [
        {"name": f"p{i}", "kind": "holding_register", "address": 2 * i + (i > 1), "type": "float32"} for i in range(4)
    ]
    prof = ProfileConfig.model_validate(
        {"profile": "t", "category": "energy_meter", "address_base": 0, "points": points}
    )
    device = ModbusDeviceConfig(name="d", profile="t", host="h")
    plan = build_read_plan(prof, device)
    [request] = plan.requests
    bulk = bulk_struct([(p.codec, p.offset) for p in request.points])
    assert bulk is not None and bulk.format == ">ff2xff"  # the gap register before p2 is padding
    data = struct.pack(">ffHff", 1.5, -0.0, 0, math.nan, math.inf)
    got: dict[str, Sample] = {}
    DevicePoller(device, plan, "h:502", time.time)._decode(got, request, data, 5.0)
    assert [(got[n].quality, got[n].value, got[n].reason) for n in ("p0", "p2", "p3")] == [
        (Quality.GOOD, 1.5, ""),
        (Quality.BAD, None, "not a number"),
        (Quality.BAD, None, "not a number"),
    ]
    assert got["p1"].value == 0.0 and math.copysign(1, got["p1"].value) == 1  # as decode: -0.0 * 1.0 + 0.0


def test_swapped_orders_and_bytes_are_not_bulk_read() -> None:
    def codecs(order: str, dt: str) -> list[Any]:
        cfg = {"name": "p", "kind": "holding_register", "address": 0, "type": dt, "order": order}
        prof = ProfileConfig.model_validate(
            {"profile": "t", "category": "energy_meter", "address_base": 0, "points": [cfg]}
        )
        plan = build_read_plan(prof, ModbusDeviceConfig(name="d", profile="t", host="h"))
        return [(p.codec, p.offset) for p in plan.requests[0].points]

    assert bulk_struct(codecs("CDAB", "float32")) is None
    assert bulk_struct(codecs("ABCD", "int8_low")) is None  # a byte of a register: decoded on its own
    assert bulk_struct(codecs("DCBA", "float32")) is not None  # little-endian, not swapped: one "<f"
