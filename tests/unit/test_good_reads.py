"""A poll that reads every point good travels as columns (``GoodReads``) instead of a Sample per point. Everything
downstream must see the same poll either way: the same values (``ReplyDecoder.good_values`` against the per-point
decode), the same Samples in plan order, the same message bytes (also when cut to fit), the same KPI values, and
a poll with any point not good still produces Samples."""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.kpi import KpiSectionConfig
from agent.config.profile import ProfileConfig
from agent.config.site import ModbusDeviceConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import GoodReads, PollResult, Quality, Role, Sample
from agent.runtime.outbox import encode_poll
from agent.sources.modbus.codec import swap_bytes
from agent.sources.modbus.device import DevicePoller
from agent.sources.modbus.link import LinkStats
from agent.sources.modbus.plan import ReadPlan, build_read_plan
from agent.sources.modbus.replies import ReplyDecoder
from tests.unit.test_modbus_bulk_decode import _same, profiles

T0 = 1_767_225_600.0


@settings(max_examples=300, deadline=None)
@given(profile=profiles(), seed=st.binary(min_size=64, max_size=64), tame=st.booleans())
def test_good_values_are_the_decoded_values_exactly_when_every_point_is_good(
    profile: dict[str, Any], seed: bytes, tame: bool
) -> None:
    if tame:  # small positive bytes: mostly finite, in range, so the all-good case is common
        seed = bytes(b & 0x3F for b in seed)
    prof = ProfileConfig.model_validate(profile)
    plan = build_read_plan(prof, ModbusDeviceConfig(name="d", profile="t", host="h"))
    meta = {p.name: (p.config.unit, p.config.role) for r in plan.requests for p in r.points}
    replies = ReplyDecoder("d", meta, len(plan.requests))
    for request in plan.requests:
        data = (seed * (request.count // 32 + 2))[: request.count * 2]
        swapped = swap_bytes(data)
        want = [p.codec.decode(data, swapped, p.offset) for p in request.points]
        got = replies.good_values(request, data)
        if any(q is not Quality.GOOD for q, _, _ in want):
            assert got is None
            continue
        assert got is not None and len(got) == len(want)
        for g, (_, w, _) in zip(got, want, strict=True):
            a = Sample("d", "p", g, "", Quality.GOOD, 0.0)
            b = Sample("d", "p", w, "", Quality.GOOD, 0.0)
            assert _same(a, b), (g, w)


# Points listed out of address order, two reads (a gap too wide to read through), mixed codecs and roles.
PROFILE = {
    "profile": "t",
    "category": "energy_meter",
    "address_base": 0,
    "points": [
        {"name": "kwh", "kind": "holding_register", "address": 200, "type": "float32", "role": "energy_import_kwh"},
        {"name": "p", "kind": "holding_register", "address": 0, "type": "float32", "unit": "kW"},
        {"name": "u", "kind": "holding_register", "address": 2, "type": "uint16", "scale": 0.1, "unit": "V"},
        {"name": "t", "kind": "holding_register", "address": 202, "type": "int16", "range": [-40, 120]},
        {"name": "i", "kind": "holding_register", "address": 4, "type": "float32", "unit": "A"},
    ],
}


class _Image:
    """Holding registers behind ``read``: what a ModbusLink returns for a read of them."""

    def __init__(self, regs: dict[int, int]) -> None:
        self.regs = regs
        self.stats = LinkStats()

    async def read(self, unit: int, function: int, start: int, count: int, timeout_s: float) -> bytes:
        return b"".join(struct.pack(">H", self.regs.get(a, 0)) for a in range(start, start + count))


def _regs(p: float, u: int, i: float, kwh: float, t: int) -> dict[int, int]:
    regs: dict[int, int] = {}
    for addr, fmt, v in ((0, ">f", p), (2, ">H", u), (4, ">f", i), (200, ">f", kwh), (202, ">h", t)):
        raw = struct.pack(fmt, v)
        for k in range(0, len(raw), 2):
            regs[addr + k // 2] = struct.unpack(">H", raw[k : k + 2])[0]
    return regs


def _poller() -> tuple[DevicePoller, ReadPlan]:
    device = ModbusDeviceConfig(name="m1", profile="t", host="h")
    plan = build_read_plan(ProfileConfig.model_validate(PROFILE), device)
    assert len(plan.requests) == 2
    clock = iter(T0 + 0.001 * k for k in range(1000))
    return DevicePoller(device, plan, "h:502", lambda: next(clock)), plan


async def _poll(poller: DevicePoller, regs: dict[int, int]) -> PollResult:
    async def no_pause() -> None:
        return None

    return await poller.poll(_Image(regs), no_pause)  # type: ignore[arg-type]


async def test_a_good_poll_is_columns_whose_samples_are_what_the_sample_path_makes() -> None:
    regs = _regs(12.5, 2301, -3.25, 1234.5, 45)
    fast, plan = _poller()
    result = await _poll(fast, regs)
    assert isinstance(result.reads, GoodReads) and result.good is result.reads
    slow, _ = _poller()
    slow.capture_raw = True  # keeps the raw bytes, so decodes point by point into Samples
    want = await _poll(slow, regs)
    assert want.good is None
    assert [s.point for s in result.samples] == list(plan.point_names) == ["kwh", "p", "u", "t", "i"]
    assert result.samples == want.samples
    assert {s.point: s.value for s in result.samples} == {"kwh": 1234.5, "p": 12.5, "u": 230.1, "t": 45, "i": -3.25}
    assert result.samples[0].role is Role.ENERGY_IMPORT_KWH and result.samples[2].unit == "V"
    stamps = {s.point: s.ts for s in result.samples}
    assert stamps["p"] == stamps["u"] == stamps["i"] != stamps["kwh"] == stamps["t"]  # each read's reply time
    assert fast.consecutive_failures == 0 and fast.last_success_ts == result.ts


async def test_a_poll_with_a_point_not_good_is_samples_with_its_reason() -> None:
    poller, _ = _poller()
    await _poll(poller, _regs(12.5, 2301, -3.25, 1234.5, 45))
    result = await _poll(poller, _regs(math.nan, 2301, -3.25, 1234.5, 500))  # NaN, and t out of range
    assert result.good is None
    by = {s.point: s for s in result.samples}
    assert by["p"].quality is Quality.BAD and by["t"].quality is Quality.UNCERTAIN
    assert by["kwh"].quality is Quality.GOOD and by["kwh"].value == 1234.5 and by["u"].value == 230.1
    result = await _poll(poller, _regs(12.5, 2301, -0.0, 1234.5, 45))
    assert result.good is not None and math.copysign(1.0, result.samples[4].value) == 1.0  # type: ignore[arg-type]


async def test_the_message_of_a_good_poll_is_byte_for_byte_the_sample_path_s() -> None:
    fast, _ = _poller()
    result = await _poll(fast, _regs(12.5, 2301, -3.25, 1234.5, 45))
    assert result.good is not None
    as_samples = PollResult(result.device, result.ts, result.duration_s, result.samples, result.requests)
    kw: dict[str, Any] = {"site": "s", "gateway": "g", "boot": "b", "first_seq": 7, "tags": {"line": "l1"}}
    topic = "plant/s/g/m1/samples"
    one = encode_poll(result, topic=topic, max_message_bytes=262144, **kw)
    assert len(one) == 1 and one == encode_poll(as_samples, topic=topic, max_message_bytes=262144, **kw)
    cut = encode_poll(result, topic=topic, max_message_bytes=len(one[0]) // 2, **kw)  # too big: cut, as before
    assert len(cut) > 1 and cut == encode_poll(as_samples, topic=topic, max_message_bytes=len(one[0]) // 2, **kw)


async def test_the_kpi_engine_takes_the_same_energy_from_columns_as_from_samples() -> None:
    cfg = KpiSectionConfig.model_validate(
        {
            "windows": ["15m", "1h"],
            "settle_s": 30,
            "demand": [{"name": "site", "meters": [{"device": "m1", "role": "energy_import_kwh"}], "windows": ["1h"]}],
        }
    )
    engines = [KpiEngine(cfg, {"m1": DeviceInfo("m1")}, "Asia/Shanghai", lambda: T0) for _ in range(2)]
    poller, _ = _poller()
    ticks = itertools.count()  # every reading of the clock 0.4 s later: each read has its own reply time
    poller._now = lambda: T0 + 0.4 * next(ticks)
    for k in range(0, 3700, 2):
        kwh = 1000.0 + k * (0.5 if 450 <= k < 1350 else 0.25)  # 1800 kW, and 900 kW outside the peak
        result = await _poll(poller, _regs(12.5, 2301, -3.25, kwh, 45))
        assert result.good is not None
        engines[0].ingest_good(result.good)
        engines[1].ingest(result.samples)
    a, b = (e.evaluate(T0 + 3700) for e in engines)
    assert a == b
    demand = [v for v in a if v.name == "max_demand_kw" and v.window == "1h"]
    assert demand and demand[0].value is not None and demand[0].value > 900.0
    assert engines[0].ignored == engines[1].ignored


def test_a_read_of_plain_floats_is_taken_whole_and_any_nan_or_infinity_makes_it_samples() -> None:
    points = [{"name": f"f{i}", "kind": "holding_register", "address": 2 * i, "type": "float32"} for i in range(4)]
    prof = ProfileConfig.model_validate(
        {"profile": "t", "category": "energy_meter", "address_base": 0, "points": points}
    )
    [request] = build_read_plan(prof, ModbusDeviceConfig(name="d", profile="t", host="h")).requests
    replies = ReplyDecoder("d", {f"f{i}": ("", None) for i in range(4)}, 1)
    assert replies.good_values(request, struct.pack(">ffff", 1.5, 2.5, -7.0, 2.0**100)) == (1.5, 2.5, -7.0, 2.0**100)
    zero = replies.good_values(request, struct.pack(">ffff", 1.5, -0.0, 0.0, 3.0))
    assert zero == (1.5, 0.0, 0.0, 3.0) and math.copysign(1.0, zero[1]) == 1.0  # as the per-point decode
    for bad in (math.nan, math.inf, -math.inf):
        assert replies.good_values(request, struct.pack(">ffff", 1.5, bad, 0.0, 3.0)) is None
