"""Hostile and broken input against the ingestor as a process, with real mosquitto and influxd: numbers no database
can store, a retained poison status, oversized messages, a gateway inventing point names, clocks in 1970 and 2099.
Each bad message is quarantined (dead letter), counted and acknowledged; the ingestor keeps running and every
other gateway's data (and the good part of the same gateway's) is written."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

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
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e
DB = "energy"


def letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def count(db: InfluxServer, q: str) -> int:
    return int(db.scalar(q, DB))


def raw_samples(gateway: str, seq: int, value: str = "1.5", ts: str = str(T0), msg_ts: str = str(T0)) -> bytes:
    """A samples payload written by hand, so it can hold the tokens a real encoder never writes."""
    return (
        f'{{"v":1,"type":"samples","site":"{SITE}","gateway":"{gateway}","boot":"b1","seq":{seq},"device":"m1",'
        f'"ts":{msg_ts},"samples":[{{"point":"p0","value":{value},"unit":"kW","quality":"good","ts":{ts}}}]}}'
    ).encode()


def test_unstorable_numbers_and_a_retained_poison_status_are_quarantined_and_ingestion_goes_on(tmp_path: Path) -> None:
    """NaN, Infinity, 1e400 and 10**400 used to crash the line-protocol conversion outside the error handling: the
    message was never acked, came back, and killed the restarted ingestor again; a retained status with ts NaN
    killed every centre started later."""
    dead = tmp_path / "dead.jsonl"
    topic = f"plant/{SITE}/gwx/m1/samples"
    poison = [
        (topic, raw_samples("gwx", 0, value="NaN")),
        (topic, raw_samples("gwx", 1, value="Infinity")),
        (topic, raw_samples("gwx", 2, value="1e400")),
        (topic, raw_samples("gwx", 3, value="1" + "0" * 400)),
        (topic, raw_samples("gwx", 4, ts="NaN")),
        (topic, raw_samples("gwx", 5, ts="1e400")),
        (topic, raw_samples("gwx", 6, msg_ts="-Infinity")),
        (
            f"plant/{SITE}/gwx/kpi",
            kpi_message("gwx", 7, T0)[1].replace(b'"window_end":1764000000.0', b'"window_end":NaN'),
        ),
    ]
    assert b"NaN" in poison[-1][1]
    status_topic = f"plant/{SITE}/gwx/status"
    poison_status = (
        f'{{"v":1,"type":"status","site":"{SITE}","gateway":"gwx","state":"online","ts":NaN,'
        f'"health":{{"polls":1{"0" * 400}}}}}'
    ).encode()
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": DB}, dead_letter={"file": str(dead)})
        pub = Publisher(broker.port)
        pub.client.publish(status_topic, poison_status, qos=1, retain=True).wait_for_publish(10)
        with CenterProcess(tmp_path / "c", cfg) as center:
            good = [samples_message("gw1", seq, "m1", T0 + seq, 3) for seq in range(20)]
            pub.publish_all(good[:10] + poison + good[10:])
            wait_until(lambda: count(db, "SELECT count(value) FROM sample") == 60, 30, "the good points")
            wait_until(lambda: len(letters(dead)) == len(poison) + 1, 30, "every poison message quarantined")
            assert center.alive()
            assert center.stop() == 0
            stats = center.log()
            assert "invalid=9," in stats and "quarantined=9," in stats and "internal_errors=0" in stats
            assert "Traceback" not in stats
        got = letters(dead)
        assert sorted(base64.b64decode(d["payload_b64"]) for d in got) == sorted(
            [p for _, p in poison] + [poison_status]
        )
        assert all(d["reason"].startswith("invalid payload") for d in got)
        assert any("finite number" in d["reason"] for d in got)

        # Everything was acknowledged: a restart gets nothing back but the retained status, which is quarantined
        # again instead of killing the new centre.
        with CenterProcess(tmp_path / "c", cfg) as center:
            wait_until(lambda: len(letters(dead)) == len(poison) + 2, 30, "the retained status quarantined again")
            pub.publish_all([samples_message("gw1", 20, "m1", T0 + 20, 3)])
            wait_until(lambda: count(db, "SELECT count(value) FROM sample") == 63, 30, "the next good points")
            assert center.stop() == 0
            assert "received=2," in center.log()
        assert base64.b64decode(letters(dead)[-1]["payload_b64"]) == poison_status
        pub.close()


def test_size_item_and_series_limits_refuse_the_excess_and_the_rest_keeps_flowing(tmp_path: Path) -> None:
    """One gateway floods new point names (the field report: 100,000 names in one 10 MB message filled InfluxDB's
    max-values-per-tag and locked every other gateway out of new points). The centre refuses a message over
    max_message_bytes unread, a message with more than max_items_per_message samples whole, and new series of a
    gateway beyond max_series_per_gateway; the gateway's known series and other gateways' new ones still land."""
    dead = tmp_path / "dead.jsonl"
    limits = {"max_message_bytes": 200_000, "max_items_per_message": 500, "max_series_per_gateway": 40}
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port, {"kind": "v1", "url": db.url, "database": DB}, dead_letter={"file": str(dead)}, limits=limits
        )
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            huge = samples_message("flood", 0, "m1", T0, 3000)  # ~300 kB
            assert len(huge[1]) > 200_000
            many = samples_message("flood", 1, "m1", T0, 600)  # under the size limit, over the item limit
            assert len(many[1]) < 200_000
            first = samples_message("flood", 2, "m1", T0 + 2, 30)  # 30 series: within the quota of 40
            wider = samples_message("flood", 3, "m1", T0 + 3, 60)  # 30 known + 10 new fit, 20 new refused
            again = samples_message("flood", 4, "m1", T0 + 4, 30)  # known series keep flowing
            other = samples_message("gw2", 0, "m9", T0, 35)  # another gateway's new series are not affected
            pub.publish_all([huge, many, first, wider, again, other])
            wait_until(lambda: count(db, "SELECT count(value) FROM sample WHERE gateway='gw2'") == 35, 30, "gw2")
            wait_until(lambda: count(db, "SELECT count(value) FROM sample WHERE gateway='flood'") == 100, 30, "flood")
            wait_until(lambda: len(letters(dead)) == 3, 30, "three dead letters")
            points = db.query("SHOW TAG VALUES FROM sample WITH KEY = point WHERE gateway = 'flood'", DB)
            assert len(points[0]["values"]) == 40
            assert center.stop() == 0
            log = center.log()
            assert "oversized=1," in log and "over_limit=620," in log and "quarantined=3," in log
        big, wide, partial = letters(dead)
        assert big["reason"].startswith(f"{len(huge[1])} bytes, more than limits.max_message_bytes (200000)")
        assert base64.b64decode(big["payload_b64"]) == huge[1][:200_000]
        assert wide["reason"] == "600 samples, more than limits.max_items_per_message (500)"
        assert partial["reason"].startswith("20 sample(s) of new series refused (p40, p41, p42, ...)")
        assert base64.b64decode(partial["payload_b64"]) == wider[1]  # the whole message is kept
        pub.close()


def test_timestamps_outside_the_skew_window_are_quarantined_and_counted(tmp_path: Path) -> None:
    """A gateway whose clock says 1970 (or 2099) used to write there silently. Samples and KPIs stamped outside
    [now - max_past_s, now + max_future_s] of the centre's clock are quarantined; the rest of the message lands."""
    dead = tmp_path / "dead.jsonl"
    now = time.time()
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": DB},
            dead_letter={"file": str(dead)},
            limits={"max_past_s": 86400.0, "max_future_s": 300.0},
        )
        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            samples = [
                Sample("m1", "ok", 1.0, "kW", Quality.GOOD, now - 60),
                Sample("m1", "epoch", 2.0, "kW", Quality.GOOD, 0.5),
                Sample("m1", "future", 3.0, "kW", Quality.GOOD, now + 3600),
            ]
            mixed = encode_samples(
                site=SITE, gateway="gw1", boot="b", seq=0, device="m1", ts=now, tags={}, samples=samples
            )
            whole_1970 = samples_message("gw1", 1, "m1", 1000.0, 2, boot="b")
            kpi_2099 = kpi_message("gw1", 2, 4_070_908_800.0, boot="b")
            kpi_now = kpi_message("gw1", 3, now - 120, boot="b")
            pub.publish_all([(f"plant/{SITE}/gw1/m1/samples", mixed), whole_1970, kpi_2099, kpi_now])
            wait_until(lambda: len(letters(dead)) == 3, 30, "three dead letters")
            wait_until(lambda: count(db, "SELECT count(value) FROM kpi") == 1, 30, "the KPI of now")
            assert db.query("SELECT value FROM sample", DB)[0]["values"][0][1] == 1.0
            assert count(db, "SELECT count(value) FROM sample") == 1
            assert center.stop() == 0
            assert "skewed=5," in center.log()
        reasons = [d["reason"] for d in letters(dead)]
        assert reasons[0].startswith("2 sample(s) refused: ts 1970-01-01 00:00:00 UTC is ")
        assert reasons[1].startswith("message ts 1970-01-01 00:16:40 UTC is ")
        assert reasons[2].startswith("message ts 2099-01-01 00:00:00 UTC is ")
        assert "years ahead of the centre's clock" in reasons[2]
        pub.close()


def test_the_series_quota_is_kept_across_restarts(tmp_path: Path) -> None:
    """The field report: the quota was relearnt after each restart, and one gateway grew to 100,000 series in five
    restarts until InfluxDB refused every other gateway's new points. Here a gateway brings 30 new series after
    each of three starts with a quota of 40: 40 land in all, the rest is quarantined, another gateway is
    unaffected, and the quota file is where the docs say (beside the dead-letter file)."""
    dead = tmp_path / "dead.jsonl"
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database(DB)
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": DB},
            dead_letter={"file": str(dead)},
            limits={"max_series_per_gateway": 40},
        )
        pub = Publisher(broker.port)
        flood = "SELECT count(value) FROM sample WHERE gateway='flood'"
        for run, (points, refused) in enumerate([(30, 0), (40, 1), (40, 2)]):
            with CenterProcess(tmp_path / "c", cfg) as center:
                pub.publish_all([samples_message("flood", run, f"d{run}", T0 + run, 30)])
                if run == 2:
                    pub.publish_all([samples_message("gw2", 0, "m9", T0, 5)])
                    wait_until(lambda: count(db, "SELECT count(value) FROM sample WHERE gateway='gw2'") == 5, 30, "gw2")
                wait_until(lambda: len(letters(dead)) == refused, 30, f"{refused} dead letters")  # noqa: B023
                wait_until(lambda: count(db, flood) == points, 30, f"{points} points")  # noqa: B023
                assert center.stop() == 0
                assert f"received={1 + (run == 2)}," in center.log()
        assert count(db, "SELECT count(value) FROM sample WHERE gateway='flood'") == 40
        reasons = [d["reason"] for d in letters(dead)]
        assert len(reasons) == 2
        assert reasons[0].startswith("20 sample(s) of new series refused")
        assert reasons[1].startswith("30 sample(s) of new series refused")
        assert len((tmp_path / "series-quota.txt").read_text().splitlines()) == 45
        pub.close()
