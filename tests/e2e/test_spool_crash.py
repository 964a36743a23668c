"""kill -9 of a publishing process, then a restart on the same spool: delivery completes, nothing is lost, and no
(gateway, boot, seq) is ever published with two different contents. The broker keeps the counting subscriber's
session on disk, so the subscriber is a faithful witness across everything."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
from tests.servers.mqtt_count import CountingSubscriber, Key, Received
from tests.servers.mqtt_tls import persistent_mosquitto
from tests.servers.process import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class Driver:
    """tests/e2e/publisher_driver.py as a child process; collects the keys it reports as appended."""

    def __init__(self, spool: Path, port: int, rounds: int, devices: int = 20, rate: float = 2000.0) -> None:
        argv = [sys.executable, "-m", "tests.e2e.publisher_driver", "--spool", str(spool), "--port", str(port)]
        argv += ["--rounds", str(rounds), "--devices", str(devices), "--rate", str(rate)]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.appended: list[Key] = []
        self.started = threading.Event()  # set at its first append: its boot is known
        self.drained = threading.Event()
        self.errors = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["appended"]:
                self.appended.append(("gw1", parts[1], int(parts[2])))
                self.started.set()
            elif parts[:1] == ["drained"]:
                self.drained.set()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def wait(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout_s)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(10)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.errors = self.proc.stderr.read()[-3000:]
        self.proc.stderr.close()

    def stderr(self) -> str:
        return self.errors


def _received_key(key: Key, received: Received) -> bool:
    return key in received.first


def _depth(spool_path: Path) -> int:
    spool = SqliteSpool.open(spool_path, SpoolConfig())
    try:
        return spool.stats().depth
    finally:
        spool.close()


def _boot_of(driver: Driver) -> str:
    assert driver.appended, "the driver appended nothing"
    return driver.appended[0][1]


def test_kill9_mid_publish_then_restart_loses_nothing(tmp_path: Path) -> None:
    spool_path = tmp_path / "state" / "spool.sqlite"
    broker = persistent_mosquitto(tmp_path / "broker").start()
    try:
        with CountingSubscriber(broker.port) as counter:
            appended: list[Key] = []
            boots = []
            left: list[int] = []  # spool depth after each kill: what the next start must deliver
            for kill_after in (300, 900, 150):  # three crashes at different points of the stream
                driver = Driver(spool_path, broker.port, rounds=200, rate=10_000)
                assert driver.started.wait(30), "the driver appended nothing in 30 s"
                # Its own seq kill_after delivered: counting all arrivals could be met by the previous boot's
                # messages still queued at the broker for the subscriber, and kill this one before it appended.
                key = ("gw1", driver.appended[0][1], kill_after)
                counter.wait_until("publishing started", partial(_received_key, key), 30)
                driver.kill9()
                appended += driver.appended
                boots.append(_boot_of(driver))
                assert not driver.drained.is_set(), "the driver finished before it was killed: kill earlier"
                left.append(_depth(spool_path))
            final = Driver(spool_path, broker.port, rounds=5)
            assert final.wait(120) == 0, final.stderr()
            appended += final.appended
            boots.append(_boot_of(final))
            counter.wait_for_keys(appended, 60)
            # every boot's Last Will "offline" reached the broker when its process died
            counter.wait_until("three wills", lambda r: sum(s["state"] == "offline" for s in r.status) >= 3, 10)

        assert all(n > 0 for n in left), f"nothing was left to replay after a kill: {left}"
        assert counter.missing(appended) == []
        assert counter.received.conflicts == [], "a (gateway, boot, seq) was published with different content"
        for boot in boots:
            seqs = sorted(k[2] for k in counter.received.first if k[1] == boot)
            assert seqs == list(range(len(seqs))), f"boot {boot}: a gap in the delivered seqs"
        spool = SqliteSpool.open(spool_path, SpoolConfig())
        assert spool.stats().depth == 0 and spool.stats().dropped_total == 0
        spool.close()
    finally:
        broker.stop()


def test_kill9_while_appending_leaves_a_sound_spool(tmp_path: Path) -> None:
    """No broker at all: the process only appends. Everything it reported appended is there, byte for byte."""
    spool_path = tmp_path / "spool.sqlite"
    driver = Driver(spool_path, free_port(), rounds=400, devices=50, rate=20000)
    deadline_keys = 3000
    while len(driver.appended) < deadline_keys and driver.proc.poll() is None:
        threading.Event().wait(0.01)
    driver.kill9()
    assert len(driver.appended) >= deadline_keys, driver.stderr()
    with sqlite3.connect(spool_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(db.execute("SELECT seq, payload FROM records").fetchall())
    db.close()
    reported = {k[2] for k in driver.appended}
    assert reported <= rows.keys()
    assert sorted(rows) == list(range(len(rows))), "the spool holds a gap"
    for seq in reported:
        assert f'"seq":{seq},'.encode() in rows[seq]
