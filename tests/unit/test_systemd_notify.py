"""The systemd notify protocol, spoken to a real AF_UNIX datagram socket as systemd would listen on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.model import DeviceHealth
from agent.runtime.monitor import Liveness, LoopLagMonitor, status_line
from agent.systemd.notify import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_ready_status_stopping_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    n.ready("polling 3 devices")
    n.status("busy")
    n.stopping()
    n.close()
    assert received(sock) == ["READY=1\nSTATUS=polling 3 devices\n", "STATUS=busy\n", "STOPPING=1\n"]


def test_without_systemd_nothing_is_sent() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    n.ready()  # must not raise


def test_watchdog_period_comes_from_watchdog_usec_and_pid() -> None:
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "20000000"}).watchdog_s == 20.0
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}).watchdog_s is None


async def test_watchdog_pings_only_while_the_agent_is_alive(
    notify_socket: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
) -> None:
    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # ping every 20 ms
    progress = True
    task = asyncio.create_task(n.watchdog(lambda: None if progress else "the sink task has ended"))
    pings_live = 0
    deadline = asyncio.get_running_loop().time() + 5
    while pings_live < 3 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        pings_live += received(sock).count("WATCHDOG=1\n")
    progress = False
    await asyncio.sleep(0.05)
    received(sock)  # drop a ping that may have been in flight at the switch
    await asyncio.sleep(0.15)
    pings_stalled = received(sock).count("WATCHDOG=1\n")
    task.cancel()
    n.close()
    assert pings_live >= 3
    assert pings_stalled == 0
    stalled = [r.getMessage() for r in caplog.records if r.name == "agent.runtime"]
    assert stalled == [
        "watchdog: the sink task has ended; not pinging systemd, which restarts the agent after WatchdogSec"
    ]  # once per episode, not every period


async def test_a_blocked_event_loop_sends_no_pings(notify_socket: tuple[socket.socket, str]) -> None:
    """What systemd's WatchdogSec relies on: while the loop is blocked nothing pings, so systemd restarts us."""
    import time

    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    task = asyncio.create_task(n.watchdog(lambda: None))
    await asyncio.sleep(0.1)
    received(sock)
    time.sleep(0.2)  # noqa: ASYNC251  # reason: blocking the loop on purpose, as a stuck call would
    pings_while_blocked = received(sock).count("WATCHDOG=1\n")
    task.cancel()
    n.close()
    assert pings_while_blocked == 0


async def test_status_is_sent_when_it_changes_and_only_then(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    n.ready("polling 2 devices")
    texts = ["polling 2 devices"] * 3 + ["polling 2 devices, 1 failing"] * 3
    calls = 0

    def status() -> str:
        nonlocal calls
        calls += 1
        return texts[min(calls, len(texts)) - 1]

    task = asyncio.create_task(n.status_updates(status, period_s=0.001))
    while calls < len(texts) + 3:  # noqa: ASYNC110  # reason: waiting for the loop under test to call us
        await asyncio.sleep(0.005)
    task.cancel()
    n.close()
    assert received(sock) == ["READY=1\nSTATUS=polling 2 devices\n", "STATUS=polling 2 devices, 1 failing\n"]


def _health(device: str, state: str) -> DeviceHealth:
    return DeviceHealth(device, state, None, 0, None, 0)


def test_status_line_counts_failing_devices_and_names_spool_and_broker() -> None:
    devices = [_health("a", "ok"), _health("b", "failed"), _health("c", "failed"), _health("d", "disabled")]
    assert status_line(devices, 12, {"connected": False}) == "polling 3 devices, 2 failing, spool depth 12, broker down"
    assert status_line([], 0, None) == "polling 0 devices, 0 failing, spool depth 0, no broker configured"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_liveness_ignores_devices_but_not_a_wedged_publisher_or_an_ended_task() -> None:
    clock = FakeClock()
    lag = LoopLagMonitor()
    lag.last_tick = clock.t
    live = Liveness(lag, stall_s=90.0, monotonic=clock)
    sink = {"connected": True, "published": 5, "acked": 5}
    assert live.check({}, 0, sink) is None
    # a backlog that goes out is alive, however slowly
    for n in range(6, 10):
        clock.t += 60
        lag.last_tick = clock.t
        assert live.check({}, 100, sink | {"published": n}) is None
    # connected, a backlog, and nothing published or acknowledged for longer than stall_s: wedged
    clock.t += 60
    lag.last_tick = clock.t
    assert live.check({}, 100, sink | {"published": 9}) is None
    clock.t += 31
    lag.last_tick = clock.t
    assert live.check({}, 100, sink | {"published": 9}) == (
        "the publisher has a broker session and 100 spooled messages but published and acknowledged nothing for 91 s"
    )
    # a broker outage is not the agent's fault: the spool grows, the watchdog stays quiet
    clock.t += 600
    lag.last_tick = clock.t
    assert live.check({}, 5000, {"connected": False, "published": 9, "acked": 9}) is None
    # timers that stopped running, or a pipeline task that ended, are
    clock.t += 100
    assert live.check({}, 0, None) == "the event loop ran no timer for 100.0 s"
    lag.last_tick = clock.t
    ended = asyncio.create_task(asyncio.sleep(0))
    await ended
    assert live.check({"sink": ended}, 0, None) == "the sink task has ended"
