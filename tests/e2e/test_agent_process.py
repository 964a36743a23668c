"""The whole agent as a process: plant simulator -> agent (KPIs, spool) -> mosquitto -> counting subscriber.

Oracle: every samples/kpi message carries (gateway, boot, seq); seqs of one boot are allocated 1, 2, 3, ... as
messages enter the spool, so "nothing lost" means the subscriber saw every seq from 1 to the highest, and
"nothing published twice with different content" means every copy of a key is byte-identical. The broker keeps
the subscriber's persistent session on disk across its restart, so the subscriber is a faithful witness.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agent_harness import AgentProcess, agent_site, dump_yaml, load_yaml, spool_depth
from tests.servers.mqtt_count import CountingSubscriber, Received
from tests.servers.mqtt_tls import persistent_mosquitto
from tests.servers.process import ServerProcess
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e

KPI = {
    "windows": ["1m"],
    "publish_interval_s": 2,
    "lines": [
        {
            "name": "line1",
            "indicator": "cement_clinker",
            "production": [{"device": "kiln1", "role": "production_t"}],
            "electricity": [{"device": "kiln1-meter", "role": "energy_import_kwh"}],
            "fuels": [{"device": "kiln1", "role": "coal_t", "carrier": "raw_coal", "lhv_gj_per_unit": 22.0}],
        }
    ],
}


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[ServerProcess]:
    with simulator_process(tmp_path) as sim:
        yield sim


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with persistent_mosquitto(tmp_path / "broker") as b:
        yield b


def seqs_of(r: Received, boot: str) -> list[int]:
    return sorted(seq for (_, b, seq) in r.first if b == boot)


def boots(r: Received) -> list[str]:
    seen: list[str] = []
    for _, boot, _ in r.order:
        if boot not in seen:
            seen.append(boot)
    return seen


def contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(1, len(seqs) + 1))


def test_broker_outage_then_sigterm_delivers_every_message_once(
    tmp_path: Path, plant: ServerProcess, broker: ServerProcess
) -> None:
    site = agent_site(tmp_path / "site.yaml", broker.port, kpi=KPI)
    with CountingSubscriber(broker.port, client_id="witness-1") as witness:
        agent = AgentProcess(site).wait_ready()
        witness.wait_until("samples from all 11 devices", lambda r: len(r.first) >= 30, 30)
        broker.stop()  # the agent keeps polling into its spool
        time.sleep(6)  # six 1 s poll cycles of data while the broker is away
        assert agent.proc.poll() is None, agent.log()
        broker.start()
        first_boot = boots(witness.received)[0]
        witness.wait_until("the backlog and fresh polls", lambda r: len(seqs_of(r, first_boot)) >= 30 + 6 * 11 + 22, 60)
        assert agent.terminate() == 0, agent.log()
        # SIGTERM flushed: what the agent spooled before exiting is published; the spool is empty.
        assert spool_depth(site) == 0, agent.log()
        witness.wait_until("the final messages", lambda r: contiguous(seqs_of(r, first_boot)), 10)
        r = witness.received
    seqs = seqs_of(r, first_boot)
    assert contiguous(seqs), f"missing seqs {sorted(set(range(1, seqs[-1] + 1)) - set(seqs))[:20]}"
    assert r.conflicts == []
    kinds = {key: payload for key, payload in r.first.items() if b'"type":"kpi"' in payload}
    assert kinds, "no KPI message arrived"
    assert "connection lost" in agent.log()
    assert r.status and r.status[-1]["state"] == "offline", "the clean stop must leave 'offline' retained"


def test_kill9_mid_publish_then_restart_loses_nothing(
    tmp_path: Path, plant: ServerProcess, broker: ServerProcess
) -> None:
    site = agent_site(tmp_path / "site.yaml", broker.port)
    with CountingSubscriber(broker.port, client_id="witness-2") as witness:
        first = AgentProcess(site).wait_ready()
        witness.wait_until("first messages", lambda r: len(r.first) >= 11, 30)
        broker.stop()
        time.sleep(4)  # a backlog builds up in the spool
        first.kill9()
        broker.start()
        second = AgentProcess(site).wait_ready()
        boot1 = boots(witness.received)[0]
        # The second run replays the first run's backlog (boot 1) and publishes its own polls (boot 2).
        witness.wait_until("a second boot", lambda r: len(boots(r)) == 2, 30)
        boot2 = boots(witness.received)[1]
        witness.wait_until("boot 2 flowing", lambda r: len(seqs_of(r, boot2)) >= 22, 30)
        assert second.terminate() == 0, second.log()
        r = witness.received
    seq1 = seqs_of(r, boot1)
    assert contiguous(seq1) and len(seq1) >= 11 + 3 * 11, f"boot 1: {len(seq1)} seqs, contiguous={contiguous(seq1)}"
    assert contiguous(seqs_of(r, boot2))
    assert r.conflicts == []
    assert spool_depth(site) == 0


def _samples_ts(r: Received, device: str) -> list[float]:
    import json

    return sorted(
        json.loads(p)["ts"] for p in r.first.values() if f'"device":"{device}"'.encode() in p and b'"samples"' in p
    )


def test_sighup_reload_restarts_only_changed_devices_and_rejects_a_bad_config(
    tmp_path: Path, plant: ServerProcess, broker: ServerProcess
) -> None:
    # Give each device its own TCP connection (host instead of the shared gateway): one source per device.
    sim_site = load_yaml(tmp_path / "site.yaml")
    gateway = sim_site["buses"][0]
    for d in sim_site["devices"]:
        d.pop("bus")
        d["host"], d["port"] = gateway["host"], gateway["port"]
    sim_site["buses"] = []
    sim_site["devices"] = [d for d in sim_site["devices"] if d["name"] in ("kiln1-meter", "water-meter", "pump1")]
    dump_yaml(tmp_path / "site.yaml", sim_site)
    site = agent_site(tmp_path / "site.yaml", broker.port)
    with CountingSubscriber(broker.port, client_id="witness-3") as witness:
        agent = AgentProcess(site).wait_ready()
        witness.wait_until("polls of every device", lambda r: len(r.first) >= 9, 30)
        doc = load_yaml(site)
        for d in doc["devices"]:
            if d["name"] == "water-meter":
                d["interval_s"] = 2.0  # changed: restarts
        doc["devices"] = [d for d in doc["devices"] if d["name"] != "pump1"]  # removed: stops
        dump_yaml(site, doc)
        reload_at = time.time()
        agent.signal(signal.SIGHUP)
        witness.wait_until("6 s after the reload", lambda r: len(_samples_ts(r, "kiln1-meter")) >= 12, 30)
        good = site.read_text()
        site.write_text(good + "\ndevices: oops\n")  # invalid: rejected, the running config goes on
        agent.signal(signal.SIGHUP)
        n = len(_samples_ts(witness.received, "kiln1-meter"))
        witness.wait_until("polling goes on", lambda r: len(_samples_ts(r, "kiln1-meter")) >= n + 3, 30)
        assert agent.proc.poll() is None
        site.write_text(good)
        assert agent.terminate() == 0
        log = agent.log()
        r = witness.received
    kiln = _samples_ts(r, "kiln1-meter")
    gaps = [b - a for a, b in itertools.pairwise(kiln)]
    assert max(gaps) < 1.5, f"the unchanged device had a gap of {max(gaps):.2f} s around the reload"
    water_after = [t for t in _samples_ts(r, "water-meter") if t > reload_at + 3]
    assert water_after and all(b - a > 1.5 for a, b in itertools.pairwise(water_after))
    pump_after = [t for t in _samples_ts(r, "pump1") if t > reload_at + 2]
    assert pump_after == []
    assert "restarted ['water-meter']" in log and "stopped ['pump1']" in log, log
    assert "is invalid, the running config goes on" in log


def test_sighup_reload_on_a_shared_gateway_restarts_only_the_changed_device(
    tmp_path: Path, plant: ServerProcess, broker: ServerProcess
) -> None:
    """Issue 17: changing one device in a reload restarted every device on its bus. Three devices behind the
    simulator's one TCP gateway: water-meter changes, pump1 goes, kiln1-meter keeps its schedule without a gap."""
    sim_site = load_yaml(tmp_path / "site.yaml")
    sim_site["devices"] = [d for d in sim_site["devices"] if d["name"] in ("kiln1-meter", "water-meter", "pump1")]
    dump_yaml(tmp_path / "site.yaml", sim_site)
    site = agent_site(tmp_path / "site.yaml", broker.port)
    with CountingSubscriber(broker.port, client_id="witness-4") as witness:
        agent = AgentProcess(site).wait_ready()
        witness.wait_until("polls of every device", lambda r: len(r.first) >= 9, 30)
        doc = load_yaml(site)
        for d in doc["devices"]:
            if d["name"] == "water-meter":
                d["interval_s"] = 2.0
        doc["devices"] = [d for d in doc["devices"] if d["name"] != "pump1"]
        dump_yaml(site, doc)
        reload_at = time.time()
        agent.signal(signal.SIGHUP)
        witness.wait_until("6 s after the reload", lambda r: len(_samples_ts(r, "kiln1-meter")) >= 12, 30)
        assert agent.terminate() == 0
        log = agent.log()
        r = witness.received
    kiln = _samples_ts(r, "kiln1-meter")
    gaps = [b - a for a, b in itertools.pairwise(kiln)]
    assert max(gaps) < 1.5, f"the unchanged device had a gap of {max(gaps):.2f} s around the reload"
    water_after = [t for t in _samples_ts(r, "water-meter") if t > reload_at + 3]
    assert water_after and all(b - a > 1.5 for a, b in itertools.pairwise(water_after))
    assert [t for t in _samples_ts(r, "pump1") if t > reload_at + 2] == []
    assert "restarted ['water-meter']; started none; stopped ['pump1']; 0 unchanged sources" in log, log
    assert "Traceback" not in log


def test_ready_only_after_the_spool_is_open_and_watchdog_pings(tmp_path: Path, plant: ServerProcess) -> None:
    import socket

    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(20)
    site = agent_site(tmp_path / "site.yaml", 1)  # no broker needed: nothing listens, the spool fills
    doc = load_yaml(site)
    del doc["mqtt"]
    dump_yaml(site, doc)
    agent = AgentProcess(site, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"})
    try:
        messages = [listener.recv(4096).decode()]
        assert messages[0].startswith("READY=1"), messages
        assert (tmp_path / "state" / "spool.sqlite").exists()
        deadline = time.monotonic() + 10
        pings = 0
        while pings < 3 and time.monotonic() < deadline:
            pings += listener.recv(4096).decode().count("WATCHDOG=1")
        assert pings >= 3
        agent.signal(signal.SIGSTOP)  # a hung process: no pings, so systemd's WatchdogSec would restart it
        time.sleep(0.2)
        listener.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                listener.recv(4096)  # pings sent before the stop
        listener.settimeout(1.5)
        with pytest.raises(TimeoutError):
            while True:
                assert "WATCHDOG=1" not in listener.recv(4096).decode()
        agent.signal(signal.SIGCONT)
        listener.settimeout(20)
        assert agent.terminate() == 0
        rest = []
        while True:
            msg = listener.recv(4096).decode()
            rest.append(msg)
            if "STOPPING=1" in msg:
                break
        assert any("STOPPING=1" in m for m in rest)
    finally:
        agent.kill9()
        listener.close()
