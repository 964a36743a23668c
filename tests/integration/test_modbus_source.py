"""ModbusSource against the plant simulator (simulators/modbus_server.py) on loopback: Modbus TCP, RTU over TCP and
RTU on a pty, with the simulator's fault injection. The agent's schedule runs on a virtual clock that the
simulator's plant model follows, so "values equal the model's" is exact and no test waits for wall-clock slots;
timeouts are real (short) because they are the I/O under test."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.config.load import LoadedSite, load_site, shipped_profile_dir
from agent.config.site import ModbusDeviceConfig
from agent.model import PollResult, Quality
from agent.runtime.monitor import status_line
from agent.sources.base import Source
from agent.sources.modbus import ModbusSource, build_modbus_sources
from agent.sources.modbus.schedule import auto_step_s, device_phase_s
from simulators.faults import FaultPlan
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel

START = 1_767_225_600.0  # the plant model's default start (2026-01-01 00:00 UTC)
METER = shipped_profile_dir() / "generic-3ph-meter.yaml"
KILN = shipped_profile_dir() / "generic-kiln.yaml"


class VirtualClock:
    """Wall clock for the schedule that jumps to each slot at once."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        self.sleeps.append(t)
        self.t = max(self.t, t)
        await asyncio.sleep(0)


class Enough(Exception):
    pass


async def collect(
    source: ModbusSource,
    n: int,
    timeout_s: float = 30.0,
    settle: Callable[[], bool] | None = None,
    on_result: Callable[[PollResult], None] | None = None,
) -> list[PollResult]:
    """Run the source until it emitted ``n`` results; ``on_result`` sees each result when it is emitted (the model
    is still at that poll's time); with ``settle``, wait (deadline 5 s) until it holds while the link is open."""
    results: list[PollResult] = []

    async def emit(result: PollResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)
        if len(results) >= n:
            if settle is not None:
                async with asyncio.timeout(5):
                    while not settle():  # noqa: ASYNC110  # reason: the condition is a counter of another component, no event to wait on
                        await asyncio.sleep(0.01)
            raise Enough

    with pytest.raises(Enough):
        await asyncio.wait_for(source.run(emit), timeout_s)
    return results


def write_site(
    tmp_path: Path,
    devices: list[dict[str, Any]],
    buses: Sequence[dict[str, Any]] = (),
    poll_phase: str = "aligned",
    **extra: Any,
) -> LoadedSite:
    """A site file; ``aligned`` by default, since most tests here check the slot arithmetic at whole seconds."""
    doc: dict[str, Any] = {
        "site": "test-plant",
        "gateway": "gw1",
        "state_dir": str(tmp_path / "state"),
        "devices": devices,
        "poll_phase": poll_phase,
        **extra,
    }
    if buses:
        doc["buses"] = list(buses)
    path = tmp_path / "site.yaml"
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return load_site(path)


def meter_device(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "profile": "generic-3ph-meter", "interval_s": 1.0, "timeout_ms": 300, **kw}


def assert_every_point_once(result: PollResult, loaded: LoadedSite, device: str) -> None:
    dev = next(d for d in loaded.site.devices if d.name == device)
    assert isinstance(dev, ModbusDeviceConfig)
    names = [p.name for p in loaded.profiles[dev.profile].points]
    assert [s.point for s in result.samples] == names
    assert all(s.device == device for s in result.samples)


def assert_matches_model(result: PollResult, sim: ModbusSimulator, device: str, loaded: LoadedSite) -> int:
    """Every sample is good, and those with a role equal the model's value now (to the register's resolution):
    call it when the result is emitted, while the virtual clock (and so the model) is still at the poll's time."""
    values = sim.model.values(device)
    points = {p.name: p for p in loaded.profiles[sim.image(device).profile.profile].points}
    checked = 0
    for s in result.samples:
        p = points[s.point]
        assert s.quality is Quality.GOOD, s
        assert s.unit == p.unit and s.role == p.role
        if p.role is None or p.role.value not in values:
            continue
        want = values[p.role.value]
        if p.type.value == "uint32":
            want = (round((want - p.offset) / p.scale) % 2**32) * p.scale + p.offset
            assert s.value == pytest.approx(want, abs=p.scale / 2)
        elif p.type.value == "float32":
            assert s.value == pytest.approx(want, rel=1e-6, abs=1e-6)
        else:
            assert s.value == pytest.approx(want, abs=abs(p.scale))
        checked += 1
    return checked


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START + 100.25)


async def test_tcp_device_polls_every_point_with_the_models_values_on_aligned_slots(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)], clock=clock.now) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        assert source.devices == ("kiln1-meter",)
        checked: list[int] = []
        results = await collect(
            source, 5, on_result=lambda r: checked.append(assert_matches_model(r, sim, r.device, loaded))
        )
    assert clock.sleeps == [START + 101, START + 102, START + 103, START + 104, START + 105]
    model_keys = model.values("kiln1-meter")
    with_role = [p for p in loaded.profiles["generic-3ph-meter"].points if p.role and p.role.value in model_keys]
    assert checked == [len(with_role)] * 5 and len(with_role) >= 5  # every point the model has a value for
    plan_requests = len(source.pollers[0].plan.requests)
    for result in results:
        assert_every_point_once(result, loaded, "kiln1-meter")
        assert result.requests == plan_requests == 4  # input 0..25, holding 256..261, 272, 288..295
        assert not result.errors
    assert [r.ts for r in results] == [START + 101 + i for i in range(5)]
    assert sim.served == {4: 5, 3: 15}
    [health] = source.health()
    assert (health.state, health.consecutive_failures, health.requests) == ("ok", 0, 20)
    assert health.last_success_ts == START + 105


async def test_spread_phase_polls_each_device_at_its_own_stable_offset_with_real_read_times(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """``poll_phase: spread`` (the default) with 100 ms steps: each device's slots are k * interval + its phase (a
    hash of its name in those steps, the same on every start), the phases differ between devices, and samples carry
    the read time."""
    model = PlantModel(start=START)
    names = ("kiln1-meter", "main-meter")
    units = [SimUnit(n, METER, i + 1) for i, n in enumerate(names)]
    async with ModbusSimulator(model, units, clock=clock.now) as sim:
        loaded = write_site(
            tmp_path,
            [meter_device(n, host="127.0.0.1", port=sim.port, unit_id=i + 1) for i, n in enumerate(names)],
            poll_phase="spread",
            poll_phase_step_ms=100,
        )
        sources = build_modbus_sources(loaded, clock=clock)
        results = {s.name: await collect(s, 3) for s in sources}
    phases = {n: device_phase_s(n, 1.0, 0.1) for n in names}
    assert phases == {"kiln1-meter": pytest.approx(0.8), "main-meter": pytest.approx(0.0)}  # a function of the name
    for name in names:
        got = [r.ts for r in results[name]]
        assert [t - got[0] for t in got] == pytest.approx([0.0, 1.0, 2.0], abs=1e-6)
        assert got[0] % 1.0 == pytest.approx(phases[name], abs=1e-6)
        for r in results[name]:
            assert all(s.ts >= r.ts for s in r.samples)  # read times, never before the slot


async def test_rtu_over_tcp_gateway_with_a_silent_unit_does_not_starve_the_others(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = PlantModel(start=START)
    units = [SimUnit("kiln1-meter", METER, 1), SimUnit("main-meter", METER, 2), SimUnit("pv-meter", METER, 3)]
    faults = FaultPlan(silent_units=frozenset({2}))
    async with ModbusSimulator(model, units, transport="rtu_over_tcp", clock=clock.now, faults=faults) as sim:
        bus = {"name": "gw", "transport": "tcp_gateway", "host": "127.0.0.1", "port": sim.port, "framing": "rtu"}
        devices = [meter_device(u.device, bus="gw", unit_id=u.unit_id, timeout_ms=250) for u in units]
        loaded = write_site(tmp_path, devices, [bus])
        [source] = build_modbus_sources(loaded, clock=clock)
        assert source.name == "gw" and len(source.devices) == 3
        with caplog.at_level(logging.WARNING, logger="agent.sources.modbus"):
            results = await collect(source, 3 * 8)
    by_device: dict[str, list[PollResult]] = {}
    for r in results:
        by_device.setdefault(r.device, []).append(r)
    # the healthy units were polled in every slot, with good values
    for name in ("kiln1-meter", "pv-meter"):
        polls = by_device[name]
        assert len(polls) >= 8
        assert [p.ts for p in polls] == [START + 101 + i for i in range(len(polls))]
        for p in polls:
            assert all(s.quality is Quality.GOOD for s in p.samples)
    # the silent unit cost one timeout per poll (the rest of its poll was not sent), then backed off; the others'
    # polls never waited for it
    assert max(p.duration_s for n in ("kiln1-meter", "pv-meter") for p in by_device[n]) < 0.25
    silent = [p for p in by_device["main-meter"] if p.requests]
    assert all(0.25 <= p.duration_s < 0.6 for p in silent)  # its timeout, plus at most its own quarantine
    for p in silent:
        assert_every_point_once(p, loaded, "main-meter")
        assert {(s.quality, s.reason) for s in p.samples} == {(Quality.BAD, "timeout after 250 ms")}
        assert p.requests == 1
    slots = [p.ts - START for p in silent]
    assert slots[:3] == [101, 102, 103]
    assert slots[3] == 105  # after 3 failures: every 2nd slot, then 4th, ...
    skipped = [p for p in by_device["main-meter"] if not p.requests]  # those slots still yield bad samples
    assert [p.ts - START for p in skipped][:1] == [104]
    health = {h.device: h for h in source.health()}
    assert health["main-meter"].state == "failed" and health["main-meter"].consecutive_failures == len(silent)
    assert health["main-meter"].errors_by_kind["backoff_skipped"] == len(skipped) >= 1
    assert health["kiln1-meter"].state == "ok"
    failed_lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed_lines == [
        f"main-meter: failed: timeout after 250 ms reading holding 256..261 (unit 2, 127.0.0.1:{sim.port})"
    ]
    assert all(r.exc_info is None for r in caplog.records)


async def test_rtu_on_a_serial_pty(tmp_path: Path, clock: VirtualClock) -> None:
    model = PlantModel(start=START)
    units = [SimUnit("kiln1-meter", METER, 1), SimUnit("kiln1", KILN, 7)]
    async with ModbusSimulator(model, units, transport="rtu_pty", clock=clock.now, baudrate=115200) as sim:
        assert sim.pty_path is not None
        bus = {"name": "rs485-1", "port": sim.pty_path, "baudrate": 115200, "pause_ms": 5}
        devices = [
            meter_device("kiln1-meter", bus="rs485-1", unit_id=1),
            {"name": "kiln1", "profile": "generic-kiln", "bus": "rs485-1", "unit_id": 7, "interval_s": 2.0},
        ]
        loaded = write_site(tmp_path, devices, [bus])
        [source] = build_modbus_sources(loaded, clock=clock)
        checked: list[int] = []
        results = await collect(
            source, 6, on_result=lambda r: checked.append(assert_matches_model(r, sim, r.device, loaded))
        )
        for r in results:
            assert_every_point_once(r, loaded, r.device)
            assert not r.errors, r.errors
    assert all(n > 0 for n in checked)
    assert [r.ts - START for r in results if r.device == "kiln1"] == [102, 104]
    assert source.link is not None and source.link.stats.late_replies == 0


async def test_connection_dropped_every_few_requests_reconnects_without_losing_a_poll(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    faults = FaultPlan(drop_every=4)
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)], clock=clock.now, faults=faults) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        results = await collect(source, 6)
    for r in results:
        assert all(s.quality is Quality.GOOD for s in r.samples), r.errors
    assert source.link is not None
    drops = sim.stats.faults["drop"]
    assert drops == source.link.stats.resends == source.link.stats.drops >= 4
    assert source.link.stats.connects == 1 + drops
    # each drop and its resend is counted on the device (they were invisible: no poll failed)
    health = source.health()[0]
    assert (health.connection_drops, health.retries, health.errors_by_kind) == (drops, drops, {})


@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp"])
async def test_late_replies_are_discarded_and_counted_never_taken_for_the_next_request(
    tmp_path: Path, clock: VirtualClock, transport: str
) -> None:
    model = PlantModel(start=START)
    faults = FaultPlan(late_every=5, late_s=0.6)  # 1.5 x the 400 ms timeout; polls have 4 requests
    units = [SimUnit("kiln1-meter", METER, 1)]
    async with ModbusSimulator(model, units, transport=transport, clock=clock.now, faults=faults) as sim:  # type: ignore[arg-type]
        if transport == "tcp":
            dev = meter_device("kiln1-meter", host="127.0.0.1", port=sim.port, timeout_ms=400)
            loaded = write_site(tmp_path, [dev])
        else:
            bus = {"name": "gw", "transport": "tcp_gateway", "host": "127.0.0.1", "port": sim.port, "framing": "rtu"}
            loaded = write_site(tmp_path, [meter_device("kiln1-meter", bus="gw", timeout_ms=400)], [bus])
        [source] = build_modbus_sources(loaded, clock=clock)

        def all_late_replies_seen() -> bool:  # the last one may still be on its way when the 8th poll ends
            assert source.link is not None
            return source.link.stats.late_replies >= sim.stats.faults["late"]

        good_polls = 0

        def check(r: PollResult) -> None:
            nonlocal good_polls
            assert_every_point_once(r, loaded, "kiln1-meter")
            bad = [s for s in r.samples if s.quality is Quality.BAD]
            if bad:
                assert {s.reason for s in bad} == {"timeout after 400 ms"}
            else:  # a good poll has the values of the model at its own time: no stale reply was taken for it
                assert_matches_model(r, sim, "kiln1-meter", loaded)
                good_polls += 1

        results = await collect(source, 8, settle=all_late_replies_seen, on_result=check)
        assert source.link is not None
    # request 5, 10, 15, ... is late; a timeout ends its poll, so polls alternate: 4 good requests, 1 late one
    assert [r.requests for r in results] == [4, 1] * 4
    assert good_polls == 4
    late = sim.stats.faults["late"]
    assert late == 4
    assert sum(1 for r in results if r.errors) == late
    assert source.link.stats.late_replies == late
    [health] = source.health()
    assert health.errors_by_kind["late_reply"] == health.errors_by_kind["timeout"] == late


async def test_exception_codes_are_reported_by_name_and_gateway_codes_mean_unreachable(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = PlantModel(start=START)
    codes = (1, 3, 4, 6, 0x0A, 0x0B)
    faults = FaultPlan(exception_every=1, exception_codes=codes)
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)], clock=clock.now, faults=faults) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        with caplog.at_level(logging.WARNING, logger="agent.sources.modbus"):
            results = await collect(source, 4)
    reasons = [{s.reason for s in r.samples} for r in results]
    # poll 1: its 4 requests answer 1, 3, 4, 6 in turn; polls 2 and 3: 0x0A, then 0x0B stop the poll at once (the
    # device behind the gateway is unreachable); three failed polls: slot 4 backs off
    assert reasons[0] == {"ILLEGAL FUNCTION", "ILLEGAL DATA VALUE", "SERVER DEVICE FAILURE", "SERVER DEVICE BUSY"}
    assert reasons[1] == {"GATEWAY PATH UNAVAILABLE"}
    assert reasons[2] == {"GATEWAY TARGET DEVICE FAILED TO RESPOND"}
    assert reasons[3] == {"backing off: GATEWAY TARGET DEVICE FAILED TO RESPOND"}
    assert [r.requests for r in results] == [4, 1, 1, 0]
    assert all(s.quality is Quality.BAD and s.value is None for r in results for s in r.samples)
    [health] = source.health()
    assert health.errors_by_kind["SERVER DEVICE BUSY"] == 1
    assert sum(sim.stats.exceptions.values()) == health.requests == 6
    # every point bad in every poll: the device is failing even though it answered (issue 17: "0 failing")
    assert health.consecutive_failures == 3 and health.state == "failed"
    assert [r.getMessage() for r in caplog.records] == [  # once per state change
        f"kiln1-meter: failed: ILLEGAL FUNCTION reading holding 256..261 (unit 1, 127.0.0.1:{sim.port})",
    ]


async def test_illegal_data_address_splits_once_and_keeps_the_split(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = PlantModel(start=START)
    unit = SimUnit("kiln1-meter", METER, 1, holes=frozenset({"energy_export"}))
    async with ModbusSimulator(model, [unit], clock=clock.now) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        with caplog.at_level(logging.WARNING, logger="agent.sources.modbus"):
            results = await collect(source, 12)
    poller = source.pollers[0]
    for r in results:
        assert_every_point_once(r, loaded, "kiln1-meter")
        bad = {s.point: s.reason for s in r.samples if s.quality is not Quality.GOOD}
        assert bad == {"energy_export": "ILLEGAL DATA ADDRESS"}
    # holding 256..261 (3 counters) -> 3 single-point reads (no gap between them to split at first)
    assert [(q.start, q.count) for q in poller.slots if q.function == 3][:3] == [(256, 2), (258, 2), (260, 2)]
    # poll 1: 4 plan reads (one fails) + 3 single reads; later polls: 5, and 6 when the hole is retried (every 10th)
    assert results[0].requests == 4 + 3
    assert [r.requests for r in results[1:11]] == [5] * 9 + [6]
    assert sim.stats.illegal_address == 1 + 1 + 1  # the coalesced read, the single read, its 10th-poll retry
    assert [r.getMessage() for r in caplog.records] == [  # one line, not one per split or per point
        f"kiln1-meter: ILLEGAL DATA ADDRESS at point energy_export (unit 1, 127.0.0.1:{sim.port}); the other points "
        "are read"
    ]


async def test_a_wrong_unit_id_fails_the_device_with_one_line_and_status_counts_it(
    tmp_path: Path, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17: a meter polled at the unit id of another device (a drive with another register map) logged 20
    lines in one poll, and ``systemctl status`` said "0 failing" while every point was bad."""
    model = PlantModel(start=START)
    units = [
        SimUnit("kiln1-meter", METER, 1),
        SimUnit("raw-mill-vfd", shipped_profile_dir() / "generic-vfd-motor.yaml", 2),
    ]
    async with ModbusSimulator(model, units, clock=clock.now) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port, unit_id=2)])
        [source] = build_modbus_sources(loaded, clock=clock)
        with caplog.at_level(logging.WARNING, logger="agent.sources.modbus"):
            results = await collect(source, 6)
    assert all(s.quality is Quality.BAD for r in results for s in r.samples)
    assert [r.getMessage() for r in caplog.records] == [
        f"kiln1-meter: failed: every point answered ILLEGAL DATA ADDRESS (unit 2, 127.0.0.1:{sim.port}): check "
        "unit_id (another device may answer at it) and that the profile matches this device"
    ]
    health = source.health()
    assert [h.state for h in health] == ["failed"]
    assert status_line(health, 0, None) == "polling 1 devices, 1 failing, spool depth 0, no broker configured"


async def test_wrong_byte_count_is_a_bad_frame_for_that_request_only(tmp_path: Path, clock: VirtualClock) -> None:
    model = PlantModel(start=START)
    faults = FaultPlan(bad_byte_count_every=3)
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)], clock=clock.now, faults=faults) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        results = await collect(source, 3)
    # every 3rd request is answered with its byte count 2 short; 4 requests per poll
    requests = source.pollers[0].slots
    numbered = [q for _ in results for q in requests]
    for i, r in enumerate(results):
        expected: dict[str, str] = {}
        for n, q in enumerate(requests, start=i * len(requests) + 1):
            if n % 3 == 0:
                want = 2 * q.count
                expected |= {p.name: f"wrong byte count: expected {want}, got {want - 2}" for p in q.points}
        bad = {s.point: s.reason for s in r.samples if s.quality is Quality.BAD}
        assert bad == expected
        assert all(not math.isnan(s.value) for s in r.samples if isinstance(s.value, float))
    assert len(numbered) == 12
    assert sim.stats.faults["bad_byte_count"] == 4
    [health] = source.health()
    assert health.errors_by_kind["frame"] == 4 and health.consecutive_failures == 0


async def test_a_slow_consumer_makes_the_source_skip_and_count_slots_not_burst(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)], clock=clock.now) as sim:
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", host="127.0.0.1", port=sim.port)])
        [source] = build_modbus_sources(loaded, clock=clock)
        typed: Source = source  # ModbusSource satisfies the runtime's Source protocol (checked by mypy)
        results: list[PollResult] = []

        async def slow_emit(result: PollResult) -> None:  # back-pressure: each hand-over takes 2.5 s
            results.append(result)
            clock.t += 2.5
            if len(results) == 4:
                raise Enough

        with pytest.raises(Enough):
            await asyncio.wait_for(typed.run(slow_emit), 30)
    assert [r.ts - START for r in results] == [101, 104, 107, 110]
    [health] = source.health()
    assert health.errors_by_kind["missed_slot"] == 2 * 3


async def test_tcp_gateway_devices_share_one_connection_with_the_pause_between_requests(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    units = [SimUnit("kiln1-meter", METER, 1), SimUnit("main-meter", METER, 2)]
    async with ModbusSimulator(model, units, clock=clock.now) as sim:
        bus = {"name": "gw", "transport": "tcp_gateway", "host": "127.0.0.1", "port": sim.port, "pause_ms": 40}
        devices = [meter_device(u.device, bus="gw", unit_id=u.unit_id) for u in units]
        loaded = write_site(tmp_path, devices, [bus])
        [source] = build_modbus_sources(loaded, clock=clock)

        def check(r: PollResult) -> None:
            assert_matches_model(r, sim, r.device, loaded)

        results = await collect(source, 4, on_result=check)
    assert [r.device for r in results] == ["kiln1-meter", "main-meter"] * 2
    for i, r in enumerate(results):
        assert_every_point_once(r, loaded, r.device)
        # a 40 ms pause before every request but the link's very first, also between two devices' polls
        assert r.requests == 4 and r.duration_s >= 0.04 * (3 if i == 0 else 4)
    assert source.link is not None and source.link.stats.connects == 1


async def test_a_clock_set_back_realigns_the_schedule_instead_of_waiting_out_the_step(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    units = [SimUnit("kiln1-meter", METER, 1), SimUnit("main-meter", METER, 2)]
    async with ModbusSimulator(model, units, clock=lambda: START + 100) as sim:
        bus = {"name": "gw", "transport": "tcp_gateway", "host": "127.0.0.1", "port": sim.port}
        loaded = write_site(tmp_path, [meter_device(u.device, bus="gw", unit_id=u.unit_id) for u in units], [bus])
        [source] = build_modbus_sources(loaded, clock=clock)
        results: list[PollResult] = []

        async def emit(result: PollResult) -> None:
            results.append(result)
            if len(results) == 2:
                clock.t -= 3600.0  # NTP steps the gateway's clock back an hour
            if len(results) == 6:
                raise Enough

        with pytest.raises(Enough):
            await asyncio.wait_for(source.run(emit), 30)
    assert [(r.device, r.ts - START) for r in results] == [
        ("kiln1-meter", 101),
        ("main-meter", 101),
        ("kiln1-meter", 101 - 3600),
        ("main-meter", 101 - 3600),
        ("kiln1-meter", 102 - 3600),
        ("main-meter", 102 - 3600),
    ]


async def test_a_backing_off_device_still_yields_bad_samples_in_every_slot(tmp_path: Path, clock: VirtualClock) -> None:
    """Backoff spares the bus, not the record: a slot without a request gives every point bad, "backing off: ...",
    so the centre sees an honest gap slot by slot instead of no samples for up to minutes."""
    model = PlantModel(start=START)
    faults = FaultPlan(silent_units=frozenset({2}))
    async with ModbusSimulator(model, [SimUnit("main-meter", METER, 2)], clock=clock.now, faults=faults) as sim:
        dev = meter_device("main-meter", host="127.0.0.1", port=sim.port, unit_id=2, timeout_ms=250)
        loaded = write_site(tmp_path, [dev])
        [source] = build_modbus_sources(loaded, clock=clock)
        results = await collect(source, 12)
    assert [r.ts - START for r in results] == list(range(101, 113))  # one result per slot, none missing
    # 3 failed polls, then a poll every 2nd, then every 4th slot; the slots between send nothing
    assert [r.requests for r in results] == [1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    for r in results:
        assert_every_point_once(r, loaded, "main-meter")
        reason = "timeout after 250 ms" if r.requests else "backing off: timeout after 250 ms"
        assert {(s.quality, s.value, s.reason, s.ts) for s in r.samples} == {(Quality.BAD, None, reason, r.ts)}
    health = source.health()[0]
    assert health.errors_by_kind["backoff_skipped"] == 7 and health.consecutive_failures == 5
    assert health.requests == 5


async def test_drops_and_resends_on_a_gateway_are_counted_on_the_device_whose_request_it_was(
    tmp_path: Path, clock: VirtualClock
) -> None:
    model = PlantModel(start=START)
    units = [SimUnit("kiln1-meter", METER, 1), SimUnit("main-meter", METER, 2), SimUnit("pv-meter", METER, 3)]
    faults = FaultPlan(units=frozenset({2}), drop_every=3)  # every 3rd request to unit 2 closes the socket
    async with ModbusSimulator(model, units, transport="rtu_over_tcp", clock=clock.now, faults=faults) as sim:
        bus = {"name": "gw", "transport": "tcp_gateway", "host": "127.0.0.1", "port": sim.port, "framing": "rtu"}
        devices = [meter_device(u.device, bus="gw", unit_id=u.unit_id, timeout_ms=300, retries=1) for u in units]
        loaded = write_site(tmp_path, devices, [bus])
        [source] = build_modbus_sources(loaded, clock=clock)
        results = await collect(source, 3 * 6)
    assert all(s.quality is Quality.GOOD for r in results for s in r.samples)
    drops = sim.stats.faults["drop"]
    assert drops >= 3
    health = {h.device: (h.connection_drops, h.retries, h.errors_by_kind) for h in source.health()}
    assert health == {"kiln1-meter": (0, 0, {}), "main-meter": (drops, drops, {}), "pv-meter": (0, 0, {})}


@pytest.mark.long(seconds=9)  # every other request on a serial line waits out its timeout
async def test_timeouts_retried_are_counted_as_retries_not_errors(tmp_path: Path, clock: VirtualClock) -> None:
    model = PlantModel(start=START)
    faults = FaultPlan(drop_every=2)  # on a serial line a drop is a request never answered: a timeout
    async with ModbusSimulator(
        model, [SimUnit("kiln1-meter", METER, 1)], "rtu_pty", clock=clock.now, faults=faults
    ) as sim:
        assert sim.pty_path is not None
        bus = {"name": "rs485-1", "port": sim.pty_path, "baudrate": 115200}
        loaded = write_site(tmp_path, [meter_device("kiln1-meter", bus="rs485-1", unit_id=1, retries=1)], [bus])
        [source] = build_modbus_sources(loaded, clock=clock)
        results = await collect(source, 4)
    assert all(s.quality is Quality.GOOD for r in results for s in r.samples)  # each poll's retry was answered
    health = source.health()[0]
    assert (health.retries, health.connection_drops) == (sim.stats.faults["drop"], 0)
    assert health.retries >= 2 and health.errors_by_kind == {}


def test_auto_steps_keep_about_twenty_devices_a_step_per_interval(tmp_path: Path) -> None:
    """``poll_phase_step_ms: auto`` (the default): the devices polled at one interval are spread over
    ceil(n / 20) steps of that interval; up to 20 share one step (all at the top of the interval)."""
    devices = [meter_device(f"m{k:03d}", host="127.0.0.1", port=2000 + k, interval_s=1) for k in range(45)]
    devices += [meter_device(f"s{k:02d}", host="127.0.0.1", port=3000 + k, interval_s=5) for k in range(12)]
    loaded = write_site(tmp_path, devices, poll_phase="spread")
    assert loaded.site.poll_phase_step_ms == "auto"
    phases = {p.name: p.phase_s for s in build_modbus_sources(loaded) for p in s.pollers}
    assert auto_step_s(1.0, 45) == pytest.approx(1 / 3) and auto_step_s(5.0, 12) == 5.0
    fast = [phases[f"m{k:03d}"] for k in range(45)]
    assert {round(3 * p, 9) for p in fast} == {0.0, 1.0, 2.0}  # three steps of 1/3 s, each used
    assert all(phases[f"s{k:02d}"] == 0.0 for k in range(12))  # twelve at 5 s: one step
    assert fast == [device_phase_s(f"m{k:03d}", 1.0, 1 / 3) for k in range(45)]  # stable: a function of the name


def test_a_reload_restarts_only_the_devices_whose_phase_changed(tmp_path: Path) -> None:
    """A device's source fingerprint (what a reload compares) holds the phase its schedule uses, not the settings
    that led to it: with ``auto`` steps, a 21st device at 1 s halves the step and moves only the devices whose
    phase moved; on an aligned site, where every phase is 0, adding devices restarts none."""

    def prints(n: int, poll_phase: str) -> dict[str, str]:
        devices = [meter_device(f"m{k:03d}", host="127.0.0.1", port=2000 + k) for k in range(n)]
        (tmp_path / f"{poll_phase}{n}").mkdir(exist_ok=True)
        loaded = write_site(tmp_path / f"{poll_phase}{n}", devices, poll_phase=poll_phase)
        return {s.name: s.fingerprint for s in build_modbus_sources(loaded)}

    before, after = prints(20, "spread"), prints(21, "spread")
    moved = {k for k in range(20) if device_phase_s(f"m{k:03d}", 1.0, 0.5) != 0.0}
    assert moved and len(moved) < 20  # some of the twenty move to the second half-second, some stay
    assert {n for n in before if before[n] != after[n]} == {f"m{k:03d}" for k in moved}
    aligned = prints(20, "aligned")
    assert all(prints(21, "aligned")[n] == aligned[n] for n in aligned)
