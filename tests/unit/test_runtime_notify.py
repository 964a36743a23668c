"""The systemd notify protocol, spoken to a real AF_UNIX datagram socket as systemd would listen on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.notify import SystemdNotifier


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


async def test_watchdog_pings_only_while_the_pipeline_progresses(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # ping every 20 ms
    progress = True
    task = asyncio.create_task(n.watchdog(lambda: progress))
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


async def test_a_blocked_event_loop_sends_no_pings(notify_socket: tuple[socket.socket, str]) -> None:
    """What systemd's WatchdogSec relies on: while the loop is blocked nothing pings, so systemd restarts us."""
    import time

    sock, path = notify_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    task = asyncio.create_task(n.watchdog(lambda: True))
    await asyncio.sleep(0.1)
    received(sock)
    time.sleep(0.2)  # noqa: ASYNC251  # reason: blocking the loop on purpose, as a stuck call would
    pings_while_blocked = received(sock).count("WATCHDOG=1\n")
    task.cancel()
    n.close()
    assert pings_while_blocked == 0
