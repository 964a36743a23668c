"""The ingestor against real servers: mosquitto + InfluxDB 1.x (v1 /write, checked with InfluxQL) and
mosquitto + VictoriaMetrics (the v2 write API through influxdb-client)."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest

from agent.model import Quality, Sample
from agent.wire import encode_samples
from tests.e2e.test_center_harness import (
    SITE,
    T0,
    CenterProcess,
    Publisher,
    center_config,
    kpi_message,
    samples_message,
    wait_until,
)
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto
from tests.servers.victoria import victoria

pytestmark = pytest.mark.e2e
DB = "energy"


def test_v1_every_point_once_duplicates_overwrite_bad_payloads_quarantined_gap_reported(tmp_path: Path) -> None:
    dead_file = tmp_path / "dead.jsonl"
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port, {"kind": "v1", "url": db.url, "database": DB}, dead_letter={"file": str(dead_file)}
        )
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            good = [samples_message("gw1", seq, "meter1", T0 + seq, 10) for seq in range(60)]
            # gw2 loses seq 20..22 on the way: the ingestor must report exactly that gap
            good += [samples_message("gw2", seq, "meter2", T0 + seq, 5) for seq in range(40) if not 20 <= seq <= 22]
            good += [kpi_message("gw1", 60 + i, T0 + 60 + i) for i in range(5)]
            odd = Sample("meter1", "P_total.L1-avg", 1.25, 'kW, L1="avg"', Quality.GOOD, T0)  # escaped tag value
            good.append(
                (
                    f"plant/{SITE}/gw3/meter1/samples",
                    encode_samples(
                        site=SITE, gateway="gw3", boot="b", seq=0, device="meter1", ts=T0, tags={}, samples=[odd]
                    ),
                )
            )
            replays = good[:25]  # a gateway replaying its spool after a reconnect
            bad = [
                (f"plant/{SITE}/gw1/meter1/samples", b"not json"),
                (f"plant/{SITE}/gw1/meter1/samples", b'{"v":1,"type":"samples","site":"plant1"}'),
                # gw9 claims to be gw1: a gateway may only speak for itself
                (f"plant/{SITE}/gw9/meter1/samples", samples_message("gw1", 99, "meter1", T0 + 99, 1)[1]),
            ]
            pub.publish_all(good[:40] + replays + bad + good[40:])
            expected = 60 * 10 + 37 * 5 + 1
            wait_until(lambda: db.scalar("SELECT count(value) FROM sample", DB) == expected, 60, "all sample points")
            wait_until(lambda: db.scalar("SELECT count(missing) FROM gap", DB) == 1, 30, "the gap point")
            wait_until(lambda: dead_file.exists() and len(dead_file.read_text().splitlines()) == 3, 30, "3 dead")

            per_series = db.query("SELECT count(value) FROM sample GROUP BY gateway, device, point", DB)
            counts = {(s["tags"]["gateway"], s["tags"]["point"]): s["values"][0][1] for s in per_series}
            assert counts == {("gw1", f"p{i}"): 60 for i in range(10)} | {("gw2", f"p{i}"): 37 for i in range(5)} | {
                ("gw3", "P_total.L1-avg"): 1
            }
            assert db.scalar("SELECT count(value) FROM kpi", DB) == 5
            assert db.scalar("SELECT sum(value) FROM kpi", DB) == sum(100.0 + 60 + i for i in range(5))
            first, last, missing = db.query("SELECT first_seq, last_seq, missing FROM gap", DB)[0]["values"][0][1:]
            assert (first, last, missing) == (20, 22, 3)
            assert (
                db.scalar(
                    "SELECT value FROM sample WHERE gateway='gw1' AND point='p3' AND time = 1764000007000000000", DB
                )
                == 7.03
            )

            letters = [json.loads(x) for x in dead_file.read_text().splitlines()]
            assert [base64.b64decode(d["payload_b64"]) for d in letters] == [p for _, p in bad]
            assert letters[0]["reason"].startswith("invalid payload")
            assert "samples.0" not in letters[1]["reason"] and "boot: Field required" in letters[1]["reason"]
            assert "does not match the payload" in letters[2]["reason"]
            pub.close()
            assert center.stop() == 0
            log = center.log()
            assert "gw2: 3 message(s) missing: seq 20..22 of boot boot-1" in log
            assert "quarantined" in log


def test_v2_api_through_influxdb_client_into_victoriametrics(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "mq") as broker, victoria(tmp_path / "vm") as vm:
        cfg = center_config(broker.port, {"kind": "v2", "url": vm.url, "org": "plant", "bucket": "energy"})
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            msgs = [samples_message("gw1", seq, f"dev{seq % 4}", T0 + seq // 4, 8) for seq in range(200)]
            pub.publish_all(msgs + msgs[:30])  # with a replay

            def stored() -> int:
                vm.flush()
                return sum(len(s["values"]) for s in vm.export('{__name__="sample_value"}'))

            wait_until(lambda: stored() == 200 * 8, 60, "1600 samples in VictoriaMetrics", poll_s=0.3)
            series = vm.export('{__name__="sample_value",device="dev1",point="p2"}')
            assert len(series) == 1
            assert series[0]["metric"]["gateway"] == "gw1" and series[0]["metric"]["role"] == "active_power_kw"
            assert series[0]["values"] == [round(i + 0.02, 3) for i in range(50)]
            pub.close()
            assert center.stop() == 0


def test_points_influxdb_refuses_are_quarantined_and_the_rest_of_the_batch_written(tmp_path: Path) -> None:
    """A field type conflict (InfluxDB 400): the batch is retried message by message; the kpi messages InfluxDB
    refuses go to the dead-letter file with its error text, the samples around them are written."""
    dead_file = tmp_path / "dead.jsonl"
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        # someone wrote kpi.coverage as a string in this shard: every float coverage now conflicts
        conflict = f'kpi,site={SITE},gateway=other,name=x,scope=y,window=1h coverage="full" {int(T0) * 10**9}\n'
        urllib.request.urlopen(
            urllib.request.Request(f"{db.url}/write?db={DB}", data=conflict.encode(), method="POST"), timeout=10
        ).read()
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": DB, "flush_interval_ms": 300},
            dead_letter={"file": str(dead_file)},
        )
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            msgs = []
            for seq in range(20):
                msgs.append(samples_message("gw1", 2 * seq, "meter1", T0 + seq, 4))
                if seq % 4 == 0:
                    msgs.append(kpi_message("gw1", 2 * seq + 1, T0 + seq))
            pub.publish_all(msgs)
            wait_until(lambda: db.scalar("SELECT count(value) FROM sample", DB) == 80, 30, "all sample points")
            wait_until(lambda: dead_file.exists() and len(dead_file.read_text().splitlines()) == 5, 30, "5 letters")
            letters = [json.loads(x) for x in dead_file.read_text().splitlines()]
            assert all(d["topic"] == f"plant/{SITE}/gw1/kpi" for d in letters)
            assert all("InfluxDB refused it" in d["reason"] and "field type conflict" in d["reason"] for d in letters)
            assert db.scalar("SELECT count(value) FROM kpi", DB) == 0
            pub.close()
            assert center.stop() == 0
            assert "writing it message by message" in center.log()


def test_broker_restart_without_persistence_ingestor_resubscribes_and_says_what_was_lost(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": DB}, mqtt={"reconnect_max_s": 1})
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            pub.publish_all([samples_message("gw1", seq, "m1", T0 + seq, 2) for seq in range(10)])
            wait_until(lambda: db.scalar("SELECT count(value) FROM sample", DB) == 20, 30, "the first points")
            pub.close()
            broker.kill9()
            broker.start()
            center.wait_log("had lost this ingestor's session", 30)
            center.wait_log("subscribed as group", 30, count=2)
            pub = Publisher(broker.port, "gw-sim-2")
            pub.publish_all([samples_message("gw1", seq, "m1", T0 + seq, 2) for seq in range(10, 20)])
            wait_until(lambda: db.scalar("SELECT count(value) FROM sample", DB) == 40, 30, "points after restart")
            pub.close()
            assert center.stop() == 0
