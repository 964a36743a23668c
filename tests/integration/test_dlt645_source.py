"""The DL/T 645 source against the meter simulator over real sockets and a pty: a serial device server with
faults, a mixed Modbus RTU + DL/T 645 RS-485 line, and 4G DTUs dialling in (registration, heartbeats, a second DTU
with the same ID, an unknown and a silent connection)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.config.load import load_site
from agent.model import PollResult, Quality
from agent.runtime.buses import build_bus_sources
from agent.sources.dtu import DtuListener
from agent.sources.modbus.schedule import SystemClock
from agent.sources.modbus.source import ModbusSource
from simulators.dlt645_server import Dlt645Simulator, SimMeter
from simulators.layout import profile_path
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel
from tests.servers.process import free_port

MAIN, PV = "000000000001", "000000000002"


def _site(tmp_path: Path, buses: list[dict[str, Any]], devices: list[dict[str, Any]], **extra: Any) -> Path:
    path = tmp_path / "site.yaml"
    doc = {"site": "s", "gateway": "g", "state_dir": str(tmp_path), "buses": buses, "devices": devices, **extra}
    doc["profile_dirs"] = [str(profile_path("generic-kiln").parent)]
    with path.open("w") as f:
        YAML().dump(doc, f)
    return path


def _meter(name: str, address: str, profile: str, bus: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "protocol": "dlt645", "profile": profile, "bus": bus, "address": address, **kw}


def _bus_source(path: Path) -> ModbusSource:
    sources = [s for s in build_bus_sources(load_site(path)) if isinstance(s, ModbusSource)]
    assert len(sources) == 1
    return sources[0]


def _by_point(result: PollResult) -> dict[str, Any]:
    return {s.point: s for s in result.samples}


async def test_serial_server_with_faults_gives_good_values_and_named_errors(tmp_path: Path) -> None:
    model = PlantModel(start=time.time() // 1)
    meters = [
        SimMeter(
            "main-meter",
            MAIN,
            ct_ratio=2,
            pt_ratio=1100,  # 110 kV / 100 V
            fe=(0, 1, 2, 3, 4),
            garbage_every=3,
            error_every=7,
            unsupported=frozenset({"02-80-00-02"}),
            delay_s=0.02,
        ),
        SimMeter("pv-meter", PV, version="1997", ct_ratio=10),
    ]
    async with Dlt645Simulator(model, meters, clock=lambda: model.now) as sim:
        port = await sim.serve_tcp()
        bus = {"name": "ss", "transport": "tcp_gateway", "host": "127.0.0.1", "port": port, "framing": "rtu"}
        site = _site(
            tmp_path,
            [bus],
            [
                _meter("m1", MAIN, "dlt645-generic-2007-3ph-meter", "ss", ct_ratio=2, pt_ratio=1100),
                _meter("m2", PV, "dlt645-generic-1997-meter", "ss", ct_ratio=10),
            ],
        )
        source = _bus_source(site)
        m1, m2 = source.others
        results = [await source.poll_once(m1) for _ in range(3)]
        pv = _by_point(await source.poll_once(m2))
        await source.aclose()
    truth = model.values("main-meter")
    first = _by_point(results[0])
    assert first["energy_import"].quality is Quality.GOOD
    assert first["energy_import"].value == pytest.approx(truth["energy_import_kwh"], abs=2200 * 0.01)
    assert first["voltage_a"].value == pytest.approx(truth["voltage_l1_v"], abs=1100 * 0.1)
    assert first["current_a"].value == pytest.approx(truth["current_l1_a"], abs=2 * 0.001)
    assert first["active_power"].value == pytest.approx(truth["active_power_kw"], abs=2200 * 0.0001)
    assert first["frequency"].quality is Quality.BAD and first["frequency"].reason == "no such data item"
    reasons = {s.reason for r in results for s in r.samples if s.quality is Quality.BAD}
    assert reasons == {"no such data item", "other error"}  # garbage and FE counts never spoil a reading
    assert pv["energy_import"].value == pytest.approx(model.values("pv-meter")["energy_import_kwh"], abs=0.1)
    assert pv["power_factor"].quality is Quality.GOOD
    assert set(sim.controls) == {0x11, 0x01}  # only read frames ever reached the meters


async def test_a_1997_meter_addressed_as_2007_stays_silent_and_fails_the_poll(tmp_path: Path) -> None:
    model = PlantModel(start=time.time() // 1)
    async with Dlt645Simulator(model, [SimMeter("pv-meter", PV, version="1997")], clock=lambda: model.now) as sim:
        port = await sim.serve_tcp()
        bus = {"name": "ss", "transport": "tcp_gateway", "host": "127.0.0.1", "port": port, "framing": "rtu"}
        site = _site(tmp_path, [bus], [_meter("m", PV, "dlt645-generic-2007-3ph-meter", "ss", timeout_ms=100)])
        source = _bus_source(site)
        result = await source.poll_once(source.others[0])
        await source.aclose()
    assert result.requests == 1  # a silent meter costs one timeout per poll
    assert {s.reason for s in result.samples} == {"timeout after 100 ms"}


@pytest.mark.e2e
async def test_mixed_modbus_and_dlt645_line_keeps_each_devices_interval(tmp_path: Path) -> None:
    """One RS-485 line (a pty pair by socat): a Modbus RTU kiln controller every 1 s and a DL/T 645 meter every
    2 s, polled one request at a time; each device yields a result in every one of its slots."""
    model = PlantModel(start=time.time() // 1)
    modbus = ModbusSimulator(model, [SimUnit("kiln1", profile_path("generic-kiln"), 4)], clock=lambda: model.now)
    sim = Dlt645Simulator(model, [SimMeter("main-meter", MAIN, ct_ratio=200)], clock=time.time, modbus=modbus)
    async with sim:
        pty = sim.serve_pty()
        site = _site(
            tmp_path,
            [{"name": "rs485", "port": pty, "baudrate": 9600}],
            [
                {"name": "kiln1", "profile": "generic-kiln", "bus": "rs485", "unit_id": 4, "interval_s": 1},
                _meter("m1", MAIN, "dlt645-generic-2007-3ph-meter", "rs485", ct_ratio=200, interval_s=2),
            ],
        )
        source = _bus_source(site)
        seen: dict[str, list[PollResult]] = defaultdict(list)

        async def emit(result: PollResult) -> None:
            seen[result.device].append(result)

        task = asyncio.create_task(source.run(emit))
        await asyncio.sleep(6.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert isinstance(source.clock, SystemClock)
    for device, interval in (("kiln1", 1.0), ("m1", 2.0)):
        starts = [r.ts for r in seen[device]]
        slots = [math.floor(t / interval) for t in starts]
        assert len(slots) >= int(6 / interval) - 1, (device, starts)
        assert slots == list(range(slots[0], slots[0] + len(slots))), (device, starts)  # none skipped or doubled
        assert max(t - n * interval for t, n in zip(starts, slots, strict=True)) < 0.5  # polled soon after its slot
        assert all(s.quality is Quality.GOOD for r in seen[device] for s in r.samples if s.role is not None)
    assert sim.modbus_requests > 0 and set(sim.controls) == {0x11}


async def _wait(condition: Any, what: str) -> None:
    try:
        async with asyncio.timeout(5):
            while not condition():  # noqa: ASYNC110  # reason: the listener's counters have no event to wait on
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_dtus_dial_in_register_and_carry_dlt645_and_modbus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "agent.sources.dtu")
    port = free_port()
    model = PlantModel(start=time.time() // 1)
    modbus = ModbusSimulator(model, [SimUnit("kiln1", profile_path("generic-kiln"), 4)], clock=lambda: model.now)
    site = _site(
        tmp_path,
        [{"name": "dtu1", "transport": "dtu", "registration": "DTU-0001", "heartbeat": "HB"}],
        [
            _meter("m1", MAIN, "dlt645-generic-2007-3ph-meter", "dtu1", ct_ratio=200),
            {"name": "kiln1", "profile": "generic-kiln", "bus": "dtu1", "unit_id": 4},
        ],
        dtu_listener={"host": "127.0.0.1", "port": port, "registration_timeout_s": 0.3},
    )
    listener, source = build_bus_sources(load_site(site))
    assert isinstance(listener, DtuListener) and isinstance(source, ModbusSource)
    serve = asyncio.create_task(listener.run())
    dtu = Dlt645Simulator(model, [SimMeter("main-meter", MAIN, ct_ratio=200)], clock=lambda: model.now, modbus=modbus)
    twin = Dlt645Simulator(model, [SimMeter("main-meter", MAIN, ct_ratio=200)], clock=lambda: model.now)
    try:
        early = await source.poll_once(source.others[0])  # before any DTU dialled in
        assert {s.reason for s in early.samples} == {"DTU dtu1 has not dialled in"}
        await listener.listening.wait()
        async with dtu, twin:
            dtu.dial_in("127.0.0.1", port, b"DTU-0001", b"HB", 0.05)
            await _wait(lambda: "dtu1" in listener.live, "the DTU to register")
            twin.dial_in("127.0.0.1", port, b"DTU-0001", None, 1.0)
            await _wait(lambda: listener.refused >= 1, "the second DTU with the same ID to be refused")
            stranger = await asyncio.open_connection("127.0.0.1", port)
            stranger[1].write(b"WHO-ARE-YOU")
            silent = await asyncio.open_connection("127.0.0.1", port)
            await _wait(lambda: listener.heartbeats >= 2, "heartbeats")
            meter = _by_point(await source.poll_once(source.others[0]))
            kiln = _by_point(await source.poll_once(source.pollers[0]))
            assert await asyncio.wait_for(stranger[0].read(), 2) == b""  # closed: unknown registration
            assert await asyncio.wait_for(silent[0].read(), 2) == b""  # closed: nothing sent in 0.3 s
            stranger[1].close()
            silent[1].close()
            await source.aclose()
    finally:
        serve.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serve
    assert meter["energy_import"].quality is Quality.GOOD
    assert meter["energy_import"].value == pytest.approx(model.values("main-meter")["energy_import_kwh"], abs=2)
    assert kiln and all(s.quality is Quality.GOOD for s in kiln.values() if s.role is not None)
    log = caplog.text
    assert "DTU dtu1: registered from 127.0.0.1" in log
    assert "claims its registration while one is live; refused" in log
    assert "unknown registration packet" in log
    assert "sent no known registration packet within the timeout; closed" in log
    assert set(dtu.controls) == {0x11} and twin.controls == {}


def test_a_reload_keeps_unchanged_meters_and_restarts_a_changed_one(tmp_path: Path) -> None:
    bus = [{"name": "ss", "transport": "tcp_gateway", "host": "127.0.0.1", "port": 4001, "framing": "rtu"}]
    first = _site(
        tmp_path,
        bus,
        [
            _meter("m1", MAIN, "dlt645-generic-2007-3ph-meter", "ss"),
            _meter("m2", PV, "dlt645-generic-1997-meter", "ss"),
        ],
    )
    running = _bus_source(first)
    m1, m2 = running.others
    changed = _site(
        tmp_path,
        bus,
        [
            _meter("m1", MAIN, "dlt645-generic-2007-3ph-meter", "ss", ct_ratio=50),
            _meter("m2", PV, "dlt645-generic-1997-meter", "ss"),
            _meter("m3", "000000000003", "dlt645-generic-2007-3ph-meter", "ss"),
        ],
    )
    assert running.adopt(_bus_source(changed)) == (["m1"], ["m3"], [])
    assert running.others[1] is m2 and running.others[0] is not m1
    assert running.others[0].config.ct_ratio == 50  # type: ignore[attr-defined]
