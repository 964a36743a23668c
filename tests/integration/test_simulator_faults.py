"""Each injected fault happens on schedule, is seen by a pymodbus client, and is counted exactly."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from agent.config.profile import ProfileConfig
from simulators.faults import CounterFault, FaultPlan
from simulators.layout import plant_units
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel, SteppedClock

KILN = 4  # unit id of kiln1 in the plant layout; clinker_rate at holding register 0
METER = 1  # main-meter; energy_import (uint32 x 0.01, ABCD) at holding register 256


def u32(regs: Sequence[int]) -> int:
    return (regs[0] << 16) | regs[1]


async def test_connection_dropped_every_third_request() -> None:
    model = PlantModel()
    plan = FaultPlan(drop_every=3)
    async with ModbusSimulator(model, plant_units(["kiln1"]), clock=SteppedClock(model.start), faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.3, retries=0, reconnect_delay=0)
        outcomes = []
        try:
            for _ in range(9):
                if not client.connected:
                    assert await client.connect()
                try:
                    rr = await client.read_holding_registers(0, count=2, device_id=KILN)
                    outcomes.append("ok" if not rr.isError() else "error")
                except (ConnectionException, ModbusIOException):
                    outcomes.append("dropped")
        finally:
            client.close()
    assert outcomes == ["ok", "ok", "dropped"] * 3
    assert sim.stats.faults["drop"] == 3
    assert sim.stats.answered == 6


async def test_late_replies_arrive_after_the_client_gave_up_and_are_not_taken_for_the_next_answer() -> None:
    model = PlantModel()
    plan = FaultPlan(late_every=2, late_s=0.3)
    clock = SteppedClock(model.start)
    async with ModbusSimulator(model, plant_units(["main-meter"]), clock=clock, faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.2, retries=0, reconnect_delay=0)
        assert await client.connect()
        outcomes = []
        try:
            for i in range(6):
                clock.advance(1)
                if not client.connected:
                    assert await client.connect()
                try:
                    # each request asks a different count, so a stale reply cannot pass for the current one
                    rr = await client.read_holding_registers(256, count=2 + i % 2, device_id=METER)
                    assert len(rr.registers) == 2 + i % 2
                    outcomes.append("ok")
                except ModbusIOException:
                    outcomes.append("timeout")
                    await asyncio.sleep(0.15)  # let the late reply arrive while nobody waits for it
        finally:
            client.close()
    assert outcomes == ["ok", "timeout"] * 3
    assert sim.stats.faults["late"] == 3
    assert sim.stats.answered == 6  # the late ones were still sent


async def test_a_late_reply_keeps_its_transaction_id_and_is_overtaken_by_the_next_answer() -> None:
    model = PlantModel()
    plan = FaultPlan(late_every=2, late_s=0.3)
    async with ModbusSimulator(model, plant_units(["kiln1"]), clock=SteppedClock(model.start), faults=plan) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            for tid in (1, 2, 3):  # request 2 is the late one
                writer.write(struct.pack(">HHHBBHH", tid, 0, 6, KILN, 3, 0, 2))
                await writer.drain()
                await asyncio.sleep(0.02)
            order = []
            for _ in range(3):
                header = await asyncio.wait_for(reader.readexactly(7), 2.0)
                tid, _, length, _ = struct.unpack(">HHHB", header)
                await reader.readexactly(length - 1)
                order.append(tid)
        finally:
            writer.close()
            await writer.wait_closed()
    assert order == [1, 3, 2]
    assert sim.stats.faults["late"] == 1


async def test_exception_codes_on_schedule() -> None:
    model = PlantModel()
    codes = (1, 2, 3, 4, 6, 0x0A, 0x0B)
    plan = FaultPlan(exception_every=2, exception_codes=codes)
    async with ModbusSimulator(model, plant_units(["kiln1"]), clock=SteppedClock(model.start), faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0)
        assert await client.connect()
        seen = []
        try:
            for _ in range(14):
                rr = await client.read_holding_registers(0, count=2, device_id=KILN)
                seen.append(rr.exception_code if rr.isError() else 0)
        finally:
            client.close()
    assert seen[0::2] == [0] * 7
    assert tuple(seen[1::2]) == codes
    assert dict(sim.stats.exceptions) == dict.fromkeys(codes, 1)
    assert sim.stats.faults["exception"] == 7


async def test_wrong_byte_count_replies_never_yield_the_requested_registers() -> None:
    model = PlantModel()
    plan = FaultPlan(bad_byte_count_every=2)
    async with ModbusSimulator(model, plant_units(["kiln1"]), clock=SteppedClock(model.start), faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.3, retries=0, reconnect_delay=0)
        good = bad = 0
        try:
            for _ in range(6):
                if not client.connected:
                    assert await client.connect()
                try:
                    rr = await client.read_holding_registers(0, count=4, device_id=KILN)
                except (ModbusIOException, ConnectionException):
                    bad += 1
                    continue
                if not rr.isError() and len(rr.registers) == 4:
                    good += 1
                else:
                    bad += 1
        finally:
            client.close()
    assert (good, bad) == (3, 3)
    assert sim.stats.faults["bad_byte_count"] == 3


async def test_a_silent_unit_on_a_shared_rtu_bus_does_not_disturb_the_others() -> None:
    model = PlantModel()
    plan = FaultPlan(silent_units=frozenset({5}))
    units = plant_units(["kiln1", "boiler1"])
    async with ModbusSimulator(model, units, "rtu_pty", clock=SteppedClock(model.start), faults=plan) as sim:
        assert sim.pty_path is not None
        client = AsyncModbusSerialClient(sim.pty_path, framer=FramerType.RTU, baudrate=19200, timeout=0.3, retries=0)
        assert await client.connect()
        answered = silent = 0
        try:
            for i in range(6):
                unit = KILN if i % 2 == 0 else 5
                try:
                    rr = await client.read_holding_registers(0, count=2, device_id=unit)
                    assert not rr.isError()
                    answered += 1
                except ModbusIOException:
                    silent += 1
        finally:
            client.close()
    assert (answered, silent) == (3, 3)
    assert sim.stats.faults["silent"] == 3
    assert sim.stats.requests == 6


async def test_counter_starts_near_its_wrap_and_rolls_over_and_a_meter_reset_happens_on_time() -> None:
    model = PlantModel()
    clock = SteppedClock(model.start)
    wrap_at, reset_at = model.start + 10, model.start + 100
    plan = FaultPlan(
        counter_faults=(
            CounterFault("main-meter", "energy_import_kwh", at=wrap_at, kind="near_wrap", before_wrap=20.0),
            CounterFault("kiln1", "production_t", at=reset_at, kind="reset"),
        )
    )
    async with ModbusSimulator(model, plant_units(["main-meter", "kiln1"]), clock=clock, faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            clock.advance(10)
            rr = await client.read_holding_registers(256, count=2, device_id=METER)
            assert u32(rr.registers) == 2**32 - 2000  # 20 kWh below 42 949 672.96 kWh, in 0.01 kWh
            clock.advance(30)  # ~3.8 kWh/s: wrapped after about 5 s
            rr = await client.read_holding_registers(256, count=2, device_id=METER)
            expected = model.true_total("main-meter", "energy_import_kwh", wrap_at, model.now) - 20.0
            assert u32(rr.registers) == pytest.approx(expected * 100, abs=1)
            assert 0 < u32(rr.registers) < 20_000
            clock.advance(60)
            rr = await client.read_holding_registers(100, count=2, device_id=KILN)
            assert u32(rr.registers) == 0  # reset exactly at reset_at == now
            clock.advance(60)
            rr = await client.read_holding_registers(100, count=2, device_id=KILN)
            produced = model.true_total("kiln1", "production_t", reset_at, model.now)
            assert u32(rr.registers) * 0.001 == pytest.approx(produced, abs=0.001)
        finally:
            client.close()
    assert sim.stats.counter_faults == 2
    assert [e["fault"] for e in model.events("main-meter")] == ["counter_offset"]
    assert model.events("kiln1")[0]["t"] == reset_at


async def test_uint16_counter_wraps_at_65536_times_scale() -> None:
    profile = ProfileConfig.model_validate(
        {
            "profile": "tiny-counter",
            "address_base": 0,
            "points": [
                {
                    "name": "total",
                    "kind": "holding_register",
                    "address": 0,
                    "type": "uint16",
                    "scale": 0.1,
                    "role": "water_m3",
                }
            ],
        }
    )
    model = PlantModel()
    plan = FaultPlan(
        counter_faults=(CounterFault("water-meter", "water_m3", at=model.start, kind="near_wrap", before_wrap=0.5),)
    )
    clock = SteppedClock(model.start)
    async with ModbusSimulator(model, [SimUnit("water-meter", profile, 3)], clock=clock, faults=plan) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            rr = await client.read_holding_registers(0, count=1, device_id=3)
            assert rr.registers == [65531]
            clock.advance(60)  # ~1 m3 per minute: past the wrap at 6553.6 m3
            rr = await client.read_holding_registers(0, count=1, device_id=3)
            flowed = model.true_total("water-meter", "water_m3", model.start, model.now)
            assert rr.registers[0] == round((flowed - 0.5) * 10)
        finally:
            client.close()


async def test_an_outage_silences_one_device_for_its_duration() -> None:
    model = PlantModel()
    clock = SteppedClock(model.start)
    async with ModbusSimulator(model, plant_units(["kiln1", "main-meter"]), clock=clock) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.3, retries=0, reconnect_delay=0)
        assert await client.connect()
        try:
            model.inject("kiln1", "outage", seconds=60)
            with pytest.raises(ModbusIOException):
                await client.read_holding_registers(0, count=2, device_id=KILN)
            if not client.connected:
                assert await client.connect()
            rr = await client.read_holding_registers(256, count=2, device_id=METER)
            assert not rr.isError()
            clock.advance(60)
            rr = await client.read_holding_registers(0, count=2, device_id=KILN)
            assert not rr.isError()
        finally:
            client.close()
    assert sim.stats.faults["outage"] == 1


def test_a_plan_refuses_codes_and_schedules_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="exception_codes"):
        FaultPlan(exception_every=1, exception_codes=(5,))
    with pytest.raises(ValueError, match="drop_every"):
        FaultPlan(drop_every=0)
    with pytest.raises(ValueError, match="late_s"):
        FaultPlan(late_every=2)
