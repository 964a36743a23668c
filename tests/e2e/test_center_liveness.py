"""The ingestor stays alive, and says so truthfully: a bug while handling one message quarantines that message
(traceback logged once) instead of killing the process; the systemd watchdog is pinged while the pipeline keeps
the time bounds of its waits (also when no message arrives) and not while it is stuck; READY is sent once the
broker granted the subscriptions. Real mosquitto and influxd; the ingestor in-process (monotonic clock injected)
or as a process with a real notify socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import tempfile
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from agent.center.config import CenterConfig
from agent.center.influx import V1Writer
from agent.center.ingestor import Ingestor
from agent.center.lineproto import Precision
from agent.center.schema import sample_lines
from agent.wire import SamplesMessage
from tests.e2e.test_center_harness import T0, CenterProcess, Publisher, center_config, samples_message
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mosquitto import mosquitto
from tests.servers.process import free_port

pytestmark = pytest.mark.e2e
DB = "energy"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HeldWriter:
    """The real V1Writer behind a gate: a write waits until the test opens it (a hung write: a wedged library or
    a bug of ours that no timeout catches)."""

    def __init__(self, inner: V1Writer) -> None:
        self.inner = inner
        self.target = inner.target
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, body: bytes) -> None:
        self.entered.set()
        self.gate.wait(60)
        self.inner.write(body)

    def close(self) -> None:
        self.inner.close()


def points(db: InfluxServer) -> int:
    return int(db.scalar("SELECT count(value) FROM sample", DB))


async def wait_for(cond: object, timeout_s: float, what: str) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(cond):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_bug_handling_one_message_quarantines_it_and_the_ingestor_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = sample_lines

    def buggy(msg: SamplesMessage, precision: Precision, extra_tags: Collection[str] = ()) -> Iterator[str]:
        if msg.device == "bug":
            raise ZeroDivisionError("division by zero")
        return real(msg, precision, extra_tags)

    monkeypatch.setattr("agent.center.intake.sample_lines", buggy)
    dead = tmp_path / "dead.jsonl"
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = CenterConfig.model_validate(
            center_config(broker.port, {"kind": "v1", "url": db.url, "database": DB}, dead_letter={"file": str(dead)})
        )
        ready = asyncio.Event()
        ingestor = Ingestor(cfg, V1Writer(cfg.influx), ready=ready.set)
        stop = asyncio.Event()
        run = asyncio.create_task(ingestor.run(stop))
        await asyncio.wait_for(ready.wait(), 30)
        pub = Publisher(broker.port)
        msgs = [samples_message("gw1", i, "bug" if i in (3, 7) else "m1", T0 + i, 2) for i in range(10)]
        with caplog.at_level(logging.ERROR, logger="agent.center"):
            await asyncio.to_thread(pub.publish_all, msgs)
            await wait_for(lambda: points(db) == 16, 30, "the other messages' points")
            await wait_for(lambda: dead.exists() and len(dead.read_text().splitlines()) == 2, 30, "two letters")
        stop.set()
        await asyncio.wait_for(run, 30)
        pub.close()
    stats = ingestor.stats()
    assert (stats.received, stats.acked, stats.internal_errors, stats.quarantined) == (10, 10, 2, 2)
    assert "quarantined 2 (invalid 0, oversized 0, skewed 0, over limit 0, refused 0, internal errors 2)" in (
        stats.summary()
    )
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert all(
        d["reason"] == "internal error (a bug, please report it): ZeroDivisionError: division by zero" for d in letters
    )
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert (
        len(tracebacks) == 1 and "bug while handling a message on plant/plant1/gw1/bug/samples" in tracebacks[0].message
    )


async def test_stalled_is_none_while_idle_or_writing_and_names_a_hung_write(tmp_path: Path) -> None:
    clock = Monotonic()
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = CenterConfig.model_validate(
            center_config(
                broker.port,
                {"kind": "v1", "url": db.url, "database": DB, "timeout_ms": 2000},
                dead_letter={"file": str(tmp_path / "dead.jsonl")},
            )
        )
        writer = HeldWriter(V1Writer(cfg.influx))
        ready = asyncio.Event()
        ingestor = Ingestor(cfg, writer, monotonic=clock, ready=ready.set)
        stop = asyncio.Event()
        run = asyncio.create_task(ingestor.run(stop))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            assert ingestor.stalled() is None
            # Idle: no message arrives, yet the pipeline keeps checking in. A minute passes on its clock, then it
            # comes back from its wait (within reorder_timeout_s / 2 of real time) and is within bounds again.
            clock.now += 60
            assert ingestor.stalled() is not None
            await wait_for(lambda: ingestor.stalled() is None, 5, "the idle pipeline to check in")

            pub = Publisher(broker.port)
            await asyncio.to_thread(pub.publish_all, [samples_message("gw1", 0, "m1", T0, 2)])
            await asyncio.to_thread(writer.entered.wait, 30)
            clock.now += 2 * 2.0 + 1  # within the write's bound (twice timeout_ms) plus the grace
            assert ingestor.stalled() is None
            clock.now += 20  # far beyond it: the write hangs
            assert re.fullmatch(
                r"center-1: the pipeline is stuck writing to InfluxDB, 2\d s past its bound", ingestor.stalled() or ""
            )
            writer.gate.set()
            await wait_for(lambda: points(db) == 2, 30, "the points once the write returns")
            await wait_for(lambda: ingestor.stalled() is None, 5, "the pipeline to be within bounds again")
            pub.close()
        finally:
            writer.gate.set()
            stop.set()
            await asyncio.wait_for(run, 30)


def test_ready_after_the_subscriptions_and_watchdog_pings_while_idle(tmp_path: Path) -> None:
    """As systemd runs it: NOTIFY_SOCKET and WATCHDOG_USEC set. The broker is down at first: pings come (the loop
    is alive) but no READY; READY follows the broker's grant of the subscriptions; pings go on with no traffic."""
    sock_dir = Path(tempfile.mkdtemp(prefix="nfy-"))
    address = str(sock_dir / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    got: list[tuple[float, str]] = []

    def drain(until: float) -> None:
        while time.monotonic() < until:
            with contextlib.suppress(TimeoutError):
                got.append((time.monotonic(), sock.recv(4096).decode()))

    port = free_port()
    cfg = center_config(port, {"kind": "v1", "url": "http://127.0.0.1:9", "database": DB})
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}  # WatchdogSec=1: a ping every 0.5 s
    center = CenterProcess(tmp_path / "c", cfg, env=env)
    try:
        center.start(wait=False)
        drain(time.monotonic() + 3)
        assert not any("READY=1" in m for _, m in got)
        assert sum(m == "WATCHDOG=1\n" for _, m in got) >= 3
        with mosquitto(tmp_path / "mq", port=port):
            center.wait_log("subscribed as group", 30)
            drain(time.monotonic() + 1)
            (ready,) = [m for _, m in got if "READY=1" in m]
            assert "STATUS=subscribed; writing to http://127.0.0.1:9 database energy" in ready
            since = time.monotonic()
            drain(since + 3)
            assert sum(m == "WATCHDOG=1\n" and t > since for t, m in got) >= 4  # idle, no messages at all
            # the counters for systemctl status
            assert any(m.startswith("STATUS=received 0, acked 0, 0 points written; quarantined 0") for _, m in got)
            assert center.stop() == 0
        assert "STOPPING=1\n" in [m for _, m in got] or _stopping_sent(sock)
    finally:
        center.__exit__()
        sock.close()


def _stopping_sent(sock: socket.socket) -> bool:
    try:
        return "STOPPING=1" in sock.recv(4096).decode()
    except TimeoutError:
        return False
