"""No loss, no duplicates, under faults: ingestor kill -9 mid-batch, InfluxDB down, one of three group members
killed, and gap reports made once across a shared-subscription group. Real mosquitto, real influxd, the ingestor
as a process. "No duplicates" is checked per series: InfluxDB holds one point per (series, time), so a point that
was written twice under another key (e.g. stamped with the arrival time) would show up as an extra count."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.e2e.test_center_harness import CenterProcess, Publisher, center_config, plant_traffic, wait_until
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e
DB = "energy"


def points(db: InfluxServer) -> int:
    return int(db.scalar("SELECT count(value) FROM sample", DB))


def assert_each_series_complete(db: InfluxServer, per_series: int, series: int) -> None:
    rows = db.query("SELECT count(value) FROM sample GROUP BY *", DB)
    assert len(rows) == series
    assert {r["values"][0][1] for r in rows} == {per_series}


def publish_in_background(pub: Publisher, messages: list[tuple[str, bytes]], chunk: int) -> threading.Thread:
    """Publish chunk by chunk (each chunk fully PUBACKed) so the stream is still flowing while faults happen."""

    def run() -> None:
        for i in range(0, len(messages), chunk):
            pub.publish_all(messages[i : i + chunk])

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


def test_ingestor_kill9_mid_batch_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """The ingestor is killed while batches are in flight (written or not, never acked); the restarted process
    resumes its persistent session, the broker redelivers every un-acked message, and rewrites overwrite."""
    traffic = plant_traffic(gateways=2, devices=5, polls=120, points=6)  # 1200 messages, 7200 points
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": DB, "batch_points": 300},
            mqtt={"receive_maximum": 100},
        )
        center = CenterProcess(tmp_path / "c", cfg)
        with center:
            pub = Publisher(broker.port)
            sender = publish_in_background(pub, traffic, chunk=50)
            wait_until(lambda: points(db) >= 1500, 60, "the first points")
            center.kill9()
            at_kill = points(db)
            assert at_kill < len(traffic) * 6
            sender.join(120)
            assert points(db) == at_kill  # nobody consumed meanwhile: the broker kept it for the session
            center.start()
            assert "resumed its session" in center.log()
            wait_until(lambda: points(db) == 7200, 90, "all 7200 points after the restart")
            assert_each_series_complete(db, per_series=120, series=2 * 5 * 6)
            pub.close()
            assert center.stop() == 0


def test_influxdb_down_nothing_lost_and_recovery_when_it_returns(tmp_path: Path) -> None:
    """InfluxDB is killed and stays down for a bounded short time while five minutes of data (generated with 1 s
    timestamps: 20 devices x 300 polls, far more messages than the receive maximum of 200) are published; the
    ingestor keeps its batch un-acked and retries, the broker holds the rest for it (back-pressure). When InfluxDB
    returns, everything lands once."""
    traffic = plant_traffic(gateways=2, devices=10, polls=300, points=4)  # 6000 messages, 24000 points
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": DB, "batch_points": 2000, "timeout_ms": 2000},
            mqtt={"receive_maximum": 200},
        )
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            pub.publish_all(traffic[:100])
            wait_until(lambda: points(db) == 400, 30, "the first 400 points")
            db.kill9()
            pub.publish_all(traffic[100:], timeout_s=120)
            center.wait_log("failed:", 30)
            db.start()
            center.wait_log("recovered", 60)
            wait_until(lambda: points(db) == 24000, 120, "all 24000 points after InfluxDB returned", poll_s=0.2)
            assert_each_series_complete(db, per_series=300, series=2 * 10 * 4)
            pub.close()
            assert center.stop() == 0
            log = center.log()
            assert log.count("failed:") == 1 and log.count("recovered") == 1  # once per episode


def test_three_ingestors_in_one_group_one_killed_nothing_lost(tmp_path: Path) -> None:
    """Three members share the load; one is killed mid-stream. The others keep writing; the broker keeps what it
    had routed to the killed member (in flight or queued) in that member's session until it comes back under the
    same client id, as mosquitto does (it does not re-dispatch a shared message to another member)."""
    traffic = plant_traffic(gateways=3, devices=4, polls=100, points=5)  # 1200 messages, 6000 points
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        influx = {"kind": "v1", "url": db.url, "database": DB, "batch_points": 200}
        members = [
            CenterProcess(
                tmp_path / "c",
                center_config(broker.port, influx, client_id=f"center-{i}", mqtt={"receive_maximum": 50}),
            )
            for i in range(3)
        ]
        for m in members:
            m.start()
        try:
            pub = Publisher(broker.port)
            sender = publish_in_background(pub, traffic, chunk=40)
            wait_until(lambda: points(db) >= 1500, 60, "the first points")
            members[1].kill9()
            at_kill = points(db)
            sender.join(120)
            wait_until(lambda: points(db) > at_kill + 1000, 60, "the two survivors to keep writing")
            assert points(db) < 6000  # what was routed to the killed member waits in its session
            members[1].start()
            wait_until(lambda: points(db) == 6000, 90, "all 6000 points")
            assert_each_series_complete(db, per_series=100, series=3 * 4 * 5)
            pub.close()
            for m in members:
                assert m.stop() == 0
            for m in (members[0], members[2]):
                assert "received=0," not in m.log(whole=True)  # each survivor took a share
        finally:
            for m in members:
                m.__exit__()


def test_group_members_report_a_gap_once_not_the_seqs_their_peers_received(tmp_path: Path) -> None:
    """Two members each receive about half of one gateway's seqs; they tell each other what they saw, so the only
    gap reported is the real one (seq 120..121 never published), by one member, as one point."""
    traffic = [
        m for i, m in enumerate(plant_traffic(gateways=1, devices=1, polls=200, points=2)) if i not in (120, 121)
    ]
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        influx = {"kind": "v1", "url": db.url, "database": DB, "flush_interval_ms": 20}
        gaps = {"reorder_timeout_s": 1.5, "share_interval_s": 0.1}
        members = [
            CenterProcess(tmp_path / "c", center_config(broker.port, influx, client_id=f"center-{i}", gaps=gaps))
            for i in range(2)
        ]
        for m in members:
            m.start()
        try:
            pub = Publisher(broker.port)
            pub.publish_all(traffic)
            wait_until(lambda: points(db) == 2 * 198, 60, "all points")
            wait_until(lambda: db.scalar("SELECT count(missing) FROM gap", DB) >= 1, 30, "the gap point")
            for m in members:
                assert m.stop() == 0
            rows = db.query("SELECT first_seq, last_seq, missing FROM gap", DB)[0]["values"]
            assert [r[1:] for r in rows] == [[120, 121, 2]]
            logs = [m.log() for m in members]
            assert sum(log.count("missing: seq") for log in logs) == 1
            assert all("received=0," not in log for log in logs)
        finally:
            for m in members:
                m.__exit__()


def test_sigterm_while_influxdb_is_down_exits_promptly_and_acks_nothing_unwritten(tmp_path: Path) -> None:
    """Stopping during an outage must not wait for InfluxDB and must not ack the batch in hand: the next start
    (same client id) gets those messages again from its session."""
    traffic = plant_traffic(gateways=1, devices=5, polls=40, points=3)  # 200 messages, 600 points
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": DB, "timeout_ms": 1000})
        center = CenterProcess(tmp_path / "c", cfg)
        with center:
            pub = Publisher(broker.port)
            db.kill9()
            pub.publish_all(traffic)
            center.wait_log("failed:", 30)
            assert center.stop(timeout_s=10) == 0
            assert "acked=0," in center.log()
            db.start()
            center.start()
            wait_until(lambda: points(db) == 600, 60, "all 600 points after the restart")
            assert_each_series_complete(db, per_series=40, series=5 * 3)
            pub.close()
            assert center.stop() == 0
