"""A provisional KPI value never replaces a final one in InfluxDB (issue 18), tested end to end: the plant
simulator, the real agent with its spool, a persistent mosquitto cut for 16 s, the agent's default live-first
replay (slowed to 2 messages/s so the backlog is still draining when the open window closes), the centre and
InfluxDB.

What happens: during the outage the agent spools running (provisional) values of the 15 s window open then; after
the broker returns, live-first replay publishes that window's fresh final value before the backlog's older
provisional values of the same window. The old schema wrote both to one point (time = window start, ``final`` a
field), so the last write won and the final value was lost. The oracle is the counting subscriber: for every
window whose provisional values arrived after its final value (the run must have produced at least one), InfluxDB
must hold that final value as a final point."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agent_harness import AgentProcess, agent_site, dump_yaml, load_yaml, spool_depth
from tests.e2e.test_center_harness import CenterProcess, center_config, wait_until
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mqtt_count import CountingSubscriber, Received
from tests.servers.mqtt_tls import persistent_mosquitto
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e
DB = "energy"
WINDOW_S = 15.0
KPI = {
    "windows": ["15s"],
    "publish_interval_s": 1,
    "lines": [
        {
            "name": "line1",
            "production": [{"device": "kiln1", "role": "production_t"}],
            "electricity": [{"device": "kiln1-meter", "role": "energy_import_kwh"}],
        }
    ],
}
Key = tuple[str, float]  # KPI name, window start


def kpi_arrivals(r: Received) -> Iterator[tuple[Key, bool, float | None]]:
    """Every KPI value in the order its message arrived: (name, window start), final, value."""
    for key in r.order:
        doc = json.loads(r.first[key])
        if doc.get("type") == "kpi":
            for k in doc["kpis"]:
                yield (k["name"], float(k["window_start"])), bool(k.get("final", True)), k.get("value")


def finals_seen(r: Received) -> dict[Key, float]:
    return {key: value for key, final, value in kpi_arrivals(r) if final and value is not None}


def provisional_after_final(r: Received) -> list[Key]:
    final_seen: set[Key] = set()
    late: list[Key] = []
    for key, final, _ in kpi_arrivals(r):
        if final:
            final_seen.add(key)
        elif key in final_seen and key not in late:
            late.append(key)
    return late


def finals_stored(db: InfluxServer) -> dict[Key, float]:
    rows = db.query('SELECT "value", "window_start", "name" FROM "kpi" WHERE "final" = true', DB)
    if not rows:
        return {}
    cols = rows[0]["columns"]
    out: dict[Key, float] = {}
    for row in rows[0]["values"]:
        rec = dict(zip(cols, row, strict=True))
        if rec["value"] is not None and rec["window_start"] is not None:
            out[(str(rec["name"]), float(rec["window_start"]))] = float(rec["value"])
    return out


def test_after_a_broker_outage_live_first_replay_never_leaves_a_provisional_value_in_place_of_a_final(
    tmp_path: Path,
) -> None:
    with (
        persistent_mosquitto(tmp_path / "broker") as broker,
        influxd(tmp_path / "db") as db,
        simulator_process(tmp_path, devices=["kiln1", "kiln1-meter"]) as _sim,
    ):
        db.create_database(DB)
        # back within a second of the broker, as the agent is: messages for a shared group whose only member is
        # offline are not all queued by mosquitto, and this test is about their order, not their delivery
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": DB}, mqtt={"reconnect_max_s": 1.0})
        site = agent_site(tmp_path / "site.yaml", broker.port, kpi=KPI)
        doc = load_yaml(site)
        doc["mqtt"] |= {"replay_rate_msgs_s": 2.0, "replay_order": "live_first"}  # live-first is the default
        dump_yaml(site, doc)
        with (
            CenterProcess(tmp_path / "centre", cfg) as centre,
            CountingSubscriber(broker.port, "plant/+/+/kpi", "w") as witness,
        ):
            agent = AgentProcess(site).wait_ready()
            try:
                witness.wait_until("a first final KPI value", lambda r: bool(finals_seen(r)), 40)
                time.sleep((3.0 - time.time()) % WINDOW_S)  # cut 3 s into a window: it closes during the outage
                broker.stop()
                time.sleep(16.0)  # the agent keeps polling and spooling, provisional values of the open windows too
                broker.start()
                witness.wait_until(
                    "a provisional value arriving after its window's final value",
                    lambda r: bool(provisional_after_final(r)),
                    90,
                )
                wait_until(lambda: spool_depth(site) == 0, 90, "the agent's backlog drained")
                seen = finals_seen(witness.received)
                late = provisional_after_final(witness.received)  # the windows whose final went first
                wait_until(
                    lambda: all(finals_stored(db).get(key) == seen[key] for key in late),
                    30,
                    "the final value of every window whose provisional values came after it, stored as final",
                )
            finally:
                code = agent.terminate()
            assert code == 0, agent.log()
            assert centre.stop() == 0, centre.log()
        stored = finals_stored(db)
        assert late and all(stored.get(key) == seen[key] for key in late), f"final values replaced: {late}"
