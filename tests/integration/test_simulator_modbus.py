"""The Modbus simulator answers pymodbus clients with what the plant model shows, over TCP, RTU-over-TCP and an
RTU pty pair; its images follow the profiles (gaps read 0, outside and holes are ILLEGAL DATA ADDRESS)."""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from agent.config.profile import ByteOrder, DataType, PointConfig, ProfileConfig, RegisterKind
from simulators import registry
from simulators.layout import PLANT_LAYOUT, plant_units
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel, SteppedClock

_DT = ModbusBaseClient.DATATYPE
_TYPES = {
    DataType.INT16: _DT.INT16,
    DataType.UINT16: _DT.UINT16,
    DataType.INT32: _DT.INT32,
    DataType.UINT32: _DT.UINT32,
    DataType.INT64: _DT.INT64,
    DataType.UINT64: _DT.UINT64,
    DataType.FLOAT32: _DT.FLOAT32,
    DataType.FLOAT64: _DT.FLOAT64,
}


def decode(point: PointConfig, order: ByteOrder, regs: Sequence[int]) -> float:
    """Decode with pymodbus' own converter (independent of the simulator's encoder)."""
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    word_order: Literal["big", "little"] = "little" if order in (ByteOrder.CDAB, ByteOrder.DCBA) else "big"
    raw = ModbusBaseClient.convert_from_registers(regs, _TYPES[point.type], word_order)
    assert isinstance(raw, (int, float))
    return raw * point.scale + point.offset


async def read_point(client: ModbusBaseClient, unit: int, profile: ProfileConfig, point: PointConfig) -> float:
    address = point.address - profile.address_base
    width = point.type.registers(point.length)
    if point.kind is RegisterKind.HOLDING_REGISTER:
        rr = await client.read_holding_registers(address, count=width, device_id=unit)
    else:
        rr = await client.read_input_registers(address, count=width, device_id=unit)
    assert not rr.isError(), rr
    return decode(point, point.order or profile.byte_order, rr.registers)


def tolerance(point: PointConfig, value: float) -> float:
    if point.type is DataType.FLOAT32:
        return abs(value) * 1e-6 + 1e-9
    if point.type is DataType.FLOAT64:
        return abs(value) * 1e-12
    return abs(point.scale) * 0.5 + 1e-9


async def test_tcp_gateway_serves_every_device_with_the_models_values(
    plant_sim: ModbusSimulator, plant_clock: SteppedClock
) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=plant_sim.port, timeout=2, retries=0)
    await client.connect()
    try:
        for minutes in (0, 7):
            plant_clock.advance(minutes * 60)
            checked = 0
            for unit_id, image in plant_sim.images.items():
                for point in image.profile.points:
                    if point.role is None or point.type not in _TYPES:
                        continue
                    got = await read_point(client, unit_id, image.profile, point)  # moves the model to the clock
                    want = plant_sim.model.values(image.device)[point.role.value]
                    assert got == pytest.approx(want, abs=tolerance(point, want)), (image.device, point.name)
                    checked += 1
            assert checked >= 80
            assert plant_sim.model.now == plant_clock.t
    finally:
        client.close()
    assert set(plant_sim.served) <= {3, 4}


async def test_bits_strings_gaps_and_addresses_outside_the_image(
    plant_sim: ModbusSimulator,
) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=plant_sim.port, timeout=2, retries=0)
    await client.connect()
    try:
        meter = PLANT_LAYOUT["main-meter"][1]
        rr = await client.read_holding_registers(288, count=8, device_id=meter)  # serial number, ABCD string
        text = ModbusBaseClient.convert_from_registers(rr.registers, _DT.STRING)
        assert text == "SIM-main-meter"
        rr = await client.read_holding_registers(262, count=10, device_id=meter)  # unused registers between points
        assert rr.registers == [0] * 10
        rr = await client.read_holding_registers(296, count=1, device_id=meter)  # just past the last point
        assert rr.isError() and rr.exception_code == 2
        rr = await client.read_input_registers(26, count=1, device_id=meter)
        assert rr.isError() and rr.exception_code == 2
        rr = await client.read_coils(0, count=1, device_id=meter)  # the meter has no coils at all
        assert rr.isError() and rr.exception_code == 2
        vfd = PLANT_LAYOUT["raw-mill-vfd"][1]
        rr = await client.read_discrete_inputs(0, count=1, device_id=vfd)
        assert rr.bits[0] is True  # the mill runs at 08:00 local
        rr = await client.read_holding_registers(20, count=1, device_id=vfd)  # status word, fault bit 7 clear
        assert rr.registers == [0]
        kiln = PLANT_LAYOUT["kiln1"][1]
        rr = await client.read_holding_registers(110, count=1, device_id=kiln)
        assert rr.registers == [1]  # running bit 0
        rr = await client.read_holding_registers(0, count=1, device_id=99)
        assert rr.isError() and rr.exception_code == 0x0B  # a gateway's "target failed to respond"
        reader, writer = await asyncio.open_connection("127.0.0.1", plant_sim.port)  # pymodbus won't ask 126
        writer.write(struct.pack(">HHHBBHH", 9, 0, 6, kiln, 3, 0, 126))
        reply = await asyncio.wait_for(reader.readexactly(9), 2.0)
        assert struct.unpack(">HHHBBB", reply) == (9, 0, 3, kiln, 0x83, 3)  # ILLEGAL DATA VALUE
        writer.write(struct.pack(">HHHBBH", 10, 0, 4, kiln, 0x41, 0))  # a function code nobody implements
        reply = await asyncio.wait_for(reader.readexactly(9), 2.0)
        assert struct.unpack(">HHHBBB", reply) == (10, 0, 3, kiln, 0xC1, 1)  # ILLEGAL FUNCTION
        writer.close()
        await writer.wait_closed()
    finally:
        client.close()
    assert plant_sim.stats.illegal_address == 3
    assert plant_sim.stats.unknown_unit == 1
    assert plant_sim.served[0x41] == 1


async def test_a_point_declared_a_hole_answers_illegal_data_address() -> None:
    model = PlantModel()
    units = [SimUnit("kiln1", plant_units(["kiln1"])[0].profile, 1, holes=frozenset({"coal_total"}))]
    async with ModbusSimulator(model, units, clock=SteppedClock(model.start)) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
        await client.connect()
        try:
            ok = await client.read_holding_registers(100, count=2, device_id=1)
            assert not ok.isError()
            for address, count in ((100, 4), (102, 1), (103, 2)):
                rr = await client.read_holding_registers(address, count=count, device_id=1)
                assert rr.isError() and rr.exception_code == 2, (address, count)
            ok = await client.read_holding_registers(104, count=2, device_id=1)
            assert not ok.isError()
        finally:
            client.close()
    assert sim.stats.illegal_address == 3


async def test_rtu_over_tcp_serves_several_units_on_one_connection() -> None:
    model = PlantModel()
    clock = SteppedClock(model.start + 30)
    async with ModbusSimulator(model, plant_units(["kiln1", "boiler1"]), "rtu_over_tcp", clock=clock) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, framer=FramerType.RTU, timeout=2, retries=0)
        await client.connect()
        try:
            kiln = sim.images[4]
            boiler = sim.images[5]
            got = await read_point(client, 4, kiln.profile, kiln.point("clinker_rate"))
            assert got == pytest.approx(model.values("kiln1")["production_rate_tph"], rel=1e-6)
            got = await read_point(client, 5, boiler.profile, boiler.point("heat_total"))
            assert got == model.values("boiler1")["heat_recovered_gj"]  # float64: bit for bit
        finally:
            client.close()
    assert sim.served == Counter({3: 1, 4: 1})


async def test_rtu_pty_bus_answers_a_serial_client() -> None:
    model = PlantModel()
    clock = SteppedClock(model.start)
    async with ModbusSimulator(model, plant_units(["main-meter", "water-meter"]), "rtu_pty", clock=clock) as sim:
        assert sim.pty_path is not None
        client = AsyncModbusSerialClient(sim.pty_path, framer=FramerType.RTU, baudrate=19200, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            clock.advance(120)
            water = sim.images[10]
            got = await read_point(client, 10, water.profile, water.point("total"))
            assert got == pytest.approx(model.values("water-meter")["water_m3"], abs=0.005)
            meter = sim.images[1]
            got = await read_point(client, 1, meter.profile, meter.point("energy_import"))
            assert got == pytest.approx(model.values("main-meter")["energy_import_kwh"], abs=0.005)
            with pytest.raises(ModbusIOException):  # nobody on the bus has unit 7: silence, not an exception
                await client.read_holding_registers(0, count=1, device_id=7)
        finally:
            client.close()
    assert sim.stats.unknown_unit == 1


async def test_writes_are_refused_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    served: Counter[int] = Counter()
    monkeypatch.setattr(registry, "SERVED", served)  # keep this deliberate write out of the suite's check
    monkeypatch.delenv(registry.SERVED_FILE_ENV, raising=False)
    model = PlantModel()
    async with ModbusSimulator(model, plant_units(["pump1"]), clock=SteppedClock(model.start)) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
        await client.connect()
        try:
            rr = await client.write_register(0, 1, device_id=11)
            assert rr.isError() and rr.exception_code == 1
            rr = await client.write_coil(0, True, device_id=11)
            assert rr.isError() and rr.exception_code == 1
            rr = await client.write_registers(0, [1, 2], device_id=11)
            assert rr.isError() and rr.exception_code == 1
        finally:
            client.close()
    assert sim.served == Counter({6: 1, 5: 1, 16: 1})
    assert registry.writes_served(served) == {5: 1, 6: 1, 16: 1}
