"""One centre, two brokers at once (``brokers:``): plants sharded across two real mosquitto instances, each broker
with its own shared-subscription group, credentials and TLS; a broker that is down (at start, or killed later) does
not stop the other; gaps are reported once per group. Real mosquitto, real influxd, the ingestor as a process."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_center_harness import T0, CenterProcess, Publisher, center_config, samples_message, wait_until
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mosquitto import mosquitto
from tests.servers.mqtt_tls import Pki, make_pki, password_file, tls_listener_conf
from tests.servers.process import ServerProcess, free_port

pytestmark = pytest.mark.e2e
DB = "energy"


def count(db: InfluxServer, gateway: str) -> int:
    return int(db.scalar(f"SELECT count(value) FROM sample WHERE gateway = '{gateway}'", DB))


def south_broker(tmp: Path, pki: Pki, tls_port: int) -> ServerProcess:
    """TLS on ``tls_port`` and passwords for everybody (the plain port only serves the start-up probe)."""
    passwd = password_file(tmp, {"center-south": "s0uth-pass", "gw-s": "gw-pass"})
    # global options (no per_listener_settings): the password file applies to both listeners
    conf = tls_listener_conf(pki, tls_port, require_certificate=False) + f"password_file {passwd}\n"
    return mosquitto(tmp / "south", conf, anonymous=False)


def two_broker_config(
    north_port: int, south_tls_port: int, pki: Pki, tmp: Path, db: InfluxServer, **influx: Any
) -> dict[str, Any]:
    cfg = center_config(0, {"kind": "v1", "url": db.url, "database": DB} | influx)
    (tmp / "south.pass").write_text("s0uth-pass\n")
    common = {"host": "127.0.0.1", "reconnect_max_s": 1}
    cfg.pop("mqtt")
    cfg["brokers"] = [
        common | {"name": "north", "port": north_port, "client_id": "center-1", "group": "north-centre"},
        common
        | {
            "name": "south",
            "port": south_tls_port,
            "client_id": "center-1",  # another broker: the same client id is its own session there
            "group": "south-centre",
            "tls": {"ca_file": str(pki.ca)},
            "username": "center-south",
            "password_file": str(tmp / "south.pass"),
        },
    ]
    return cfg


def traffic(gateway: str, messages: int, skip: tuple[int, ...] = (), first: int = 0) -> list[tuple[str, bytes]]:
    return [
        samples_message(gateway, seq, f"dev{seq % 3}", T0 + seq, 4)
        for seq in range(first, first + messages)
        if seq not in skip
    ]


def test_two_brokers_each_with_its_own_group_credentials_and_tls_gaps_once_per_group(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    south_tls = free_port()
    with (
        mosquitto(tmp_path / "north") as north,
        south_broker(tmp_path, pki, south_tls),
        influxd(tmp_path / "db") as db,
    ):
        db.create_database(DB)
        cfg = two_broker_config(north.port, south_tls, pki, tmp_path, db)
        with CenterProcess(tmp_path / "c", cfg) as center:
            center.wait_log("subscribed as group", 30, count=2)
            log = center.log()
            assert f"subscribed as group north-centre on mqtt://127.0.0.1:{north.port}" in log
            assert f"subscribed as group south-centre on mqtt://127.0.0.1:{south_tls}" in log
            gw_n = Publisher(north.port, "gw-n")
            gw_s = Publisher(south_tls, "gw-s", username="gw-s", password="gw-pass", ca_file=pki.ca)
            gw_n.publish_all(traffic("gw-n", 150, skip=(40,)))
            gw_s.publish_all(traffic("gw-s", 120, skip=(20, 21)))
            wait_until(lambda: count(db, "gw-n") == 149 * 4, 60, "gw-n's points through the north broker")
            wait_until(lambda: count(db, "gw-s") == 118 * 4, 60, "gw-s's points through the south broker (TLS)")
            wait_until(lambda: db.scalar("SELECT count(missing) FROM gap", DB) == 2, 30, "one gap per gateway")
            rows = db.query("SELECT first_seq, last_seq FROM gap GROUP BY gateway", DB)
            assert {r["tags"]["gateway"]: [v[1:] for v in r["values"]] for r in rows} == {
                "gw-n": [[40, 40]],
                "gw-s": [[20, 21]],
            }
            gw_n.close()
            gw_s.close()
            assert center.stop() == 0
            log = center.log()
            assert log.count("missing: seq") == 2
            assert "center-1@north" in log and "center-1@south" in log
            assert "s0uth-pass" not in log


def test_a_broker_down_at_start_or_killed_later_does_not_stop_the_other(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    south_tls = free_port()
    south = south_broker(tmp_path, pki, south_tls)
    with mosquitto(tmp_path / "north") as north, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = two_broker_config(north.port, south_tls, pki, tmp_path, db)
        with CenterProcess(tmp_path / "c", cfg) as center:  # started: north granted its subscriptions
            gw_n = Publisher(north.port, "gw-n")
            gw_n.publish_all(traffic("gw-n", 50))
            wait_until(lambda: count(db, "gw-n") == 200, 60, "north's points while south has never been up")
            assert "south-centre" not in center.log()

            south.start()
            center.wait_log("subscribed as group south-centre", 30)
            gw_s = Publisher(south_tls, "gw-s", username="gw-s", password="gw-pass", ca_file=pki.ca)
            gw_s.publish_all(traffic("gw-s", 30))
            wait_until(lambda: count(db, "gw-s") == 120, 60, "south's points once it came up")
            gw_s.close()

            south.kill9()
            center.wait_log("lost the connection to mqtt://127.0.0.1:" + str(south_tls), 30)
            gw_n.publish_all(traffic("gw-n", 50, first=50))
            wait_until(lambda: count(db, "gw-n") == 400, 60, "north's points while south is down")
            assert center.alive()
            gw_n.close()
            assert center.stop() == 0
            south.stop()


def test_ready_once_one_broker_granted_and_status_says_which_brokers_are_connected(tmp_path: Path) -> None:
    """Under systemd (NOTIFY_SOCKET): with the south broker down, READY still comes once north granted the
    subscriptions (systemd would otherwise kill the whole service at TimeoutStartSec), and STATUS names the brokers
    connected; when south comes up, STATUS says so."""
    pki = make_pki(tmp_path / "pki")
    south_tls = free_port()
    south = south_broker(tmp_path, pki, south_tls)
    sock_dir = Path(tempfile.mkdtemp(prefix="nfy-"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_dir / "notify"))
    sock.settimeout(0.2)
    got: list[str] = []

    def drain_until(what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(what in m for m in got):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what!r} from the centre in {timeout_s} s: {got[-5:]}")
            with contextlib.suppress(TimeoutError):
                got.append(sock.recv(4096).decode())

    with mosquitto(tmp_path / "north") as north, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = two_broker_config(north.port, south_tls, pki, tmp_path, db)
        center = CenterProcess(tmp_path / "c", cfg, env={"NOTIFY_SOCKET": str(sock_dir / "notify")})
        try:
            center.start()
            drain_until("READY=1", 30)
            drain_until("brokers connected 1/2 (north)", 30)
            south.start()
            drain_until("brokers connected 2/2 (north, south)", 30)
            assert sum("READY=1" in m for m in got) == 1
            assert center.stop() == 0
        finally:
            center.__exit__()
            south.stop()
            sock.close()
