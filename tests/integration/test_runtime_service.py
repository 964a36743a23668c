"""The agent as a service: the systemd watchdog vouches for the agent, not for the plant; STATUS= tells ``systemctl
status`` how the plant is; the health on the status topic counts what a resend hid. The agent runs in-process
against the Modbus simulator and mosquitto, with a real AF_UNIX notify socket as systemd listens on and a short
WatchdogSec (WATCHDOG_USEC=1 s: pings every 0.5 s; systemd would act on a gap > 1 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.config.load import shipped_profile_dir
from agent.runtime.agent import Agent
from agent.systemd.notify import SystemdNotifier
from agent.wire import StatusMessage, decode
from simulators.faults import FaultPlan
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel
from tests.servers.mosquitto import mosquitto
from tests.servers.mqtt_count import CountingSubscriber, Received
from tests.servers.process import ServerProcess

pytestmark = pytest.mark.e2e  # starts mosquitto and the plant simulator

METER = shipped_profile_dir() / "generic-3ph-meter.yaml"
WATCHDOG_S = 1.0


@dataclass
class NotifySocket:
    """What systemd would receive: (monotonic time, message) per datagram."""

    path: str
    sock: socket.socket
    messages: list[tuple[float, str]] = field(default_factory=list)

    def receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if m == "WATCHDOG=1\n"]

    def statuses(self) -> list[str]:
        return [line[7:] for _, m in self.messages for line in m.splitlines() if line.startswith("STATUS=")]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield NotifySocket(path, sock)
    sock.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path / "broker") as b:
        yield b


def write_site(
    tmp_path: Path, port: int, broker_port: int, devices: list[dict[str, Any]], status_interval_s: float = 30
) -> Path:
    doc = {
        "site": "test-plant",
        "gateway": "gw1",
        "state_dir": str(tmp_path / "state"),
        "devices": [{"profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port, **d} for d in devices],
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": "watchdog-test", "reconnect_min_s": 0.2},
        "monitoring": {"failure_threshold": 1, "status_interval_s": status_interval_s},
    }
    path = tmp_path / "site.yaml"
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return path


@dataclass
class Running:
    agent: Agent
    notify: NotifySocket
    started: float

    async def wait_status(self, text: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.notify.statuses():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no STATUS={text!r}; got {self.notify.statuses()}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(site: Path, notify: NotifySocket) -> AsyncIterator[Running]:
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(int(WATCHDOG_S * 1_000_000))}
    agent = Agent(site, notifier=SystemdNotifier(env), install_signal_handlers=False)
    loop = asyncio.get_running_loop()
    loop.add_reader(notify.sock.fileno(), notify.receive)
    task = asyncio.create_task(agent.run())
    try:
        yield Running(agent, notify, time.monotonic())
    finally:
        agent.stop()
        await asyncio.wait_for(task, 30)
        loop.remove_reader(notify.sock.fileno())


def assert_pinged_without_gaps(run: Running, until: float) -> None:
    """What systemd checks: never more than WatchdogSec without a ping (the first counted from READY)."""
    ready = next(t for t, m in run.notify.messages if m.startswith("READY=1"))
    times = [ready, *(t for t in run.notify.pings() if t <= until), until]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < WATCHDOG_S, f"a gap of {max(gaps):.2f} s would have had systemd kill a healthy agent"


async def test_a_site_whose_only_device_polls_every_minute_keeps_pinging(
    tmp_path: Path, notify_socket: NotifySocket, broker: ServerProcess
) -> None:
    model = PlantModel(start=float(int(time.time())))
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)]) as sim:
        site = write_site(tmp_path, sim.port, broker.port, [{"name": "kiln1-meter", "interval_s": 60}])
        async with running(site, notify_socket) as run:
            await run.wait_status("polling 1 devices, 0 failing, spool depth 0, broker connected")
            await asyncio.sleep(4 * WATCHDOG_S)
            assert_pinged_without_gaps(run, time.monotonic())


async def test_a_site_whose_devices_are_all_unreachable_keeps_pinging_and_says_so(
    tmp_path: Path, notify_socket: NotifySocket, broker: ServerProcess
) -> None:
    model = PlantModel(start=float(int(time.time())))
    units = [SimUnit("main-meter", METER, 1), SimUnit("pv-meter", METER, 2)]
    async with ModbusSimulator(model, units, faults=FaultPlan(silent_units=frozenset({1, 2}))) as sim:
        devices = [
            {"name": "main-meter", "unit_id": 1, "interval_s": 1, "timeout_ms": 700},
            {"name": "pv-meter", "unit_id": 2, "interval_s": 1, "timeout_ms": 700},
        ]
        site = write_site(tmp_path, sim.port, broker.port, devices)
        async with running(site, notify_socket) as run:
            await run.wait_status("polling 2 devices, 2 failing, spool depth 0, broker connected")
            await asyncio.sleep(4 * WATCHDOG_S)
            assert_pinged_without_gaps(run, time.monotonic())


async def test_dropped_connections_and_resends_reach_the_status_topic(
    tmp_path: Path, notify_socket: NotifySocket, broker: ServerProcess
) -> None:
    """Every 4th request closes the connection; the agent resends and no poll fails, so errors stay empty: the
    health on the status topic must still count each drop and each resend."""
    model = PlantModel(start=float(int(time.time())))
    units = [SimUnit("kiln1-meter", METER, 1)]
    with CountingSubscriber(broker.port, client_id="status-reader") as status:
        async with ModbusSimulator(model, units, faults=FaultPlan(drop_every=4)) as sim:
            site = write_site(tmp_path, sim.port, broker.port, [{"name": "kiln1-meter"}], status_interval_s=1)
            async with running(site, notify_socket) as run:

                def counted(r: Received) -> bool:
                    return any(_drops(doc) >= 2 for doc in r.status)

                await asyncio.to_thread(status.wait_until, "2 drops in a status", counted, 20)
            final = run.agent.health()["devices"]["kiln1-meter"]
            drops = sim.stats.faults["drop"]
    assert (final["connection_drops"], final["retries"], final["errors"]) == (drops, drops, {})
    published = next(doc for doc in status.received.status if _drops(doc) >= 2)
    message = decode(json.dumps(published))  # the wire schema accepts it
    assert isinstance(message, StatusMessage)
    device = message.health["devices"]["kiln1-meter"]
    assert device["retries"] == device["connection_drops"] >= 2 and device["errors"] == {}


def _drops(doc: dict[str, object]) -> int:
    health = doc.get("health")
    if not isinstance(health, dict):
        return 0
    device = health.get("devices", {}).get("kiln1-meter", {})
    return int(device.get("connection_drops", 0))
