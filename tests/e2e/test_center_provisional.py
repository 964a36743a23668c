"""A provisional KPI value never replaces a final one in InfluxDB (issue 18), tested end to end: the plant
simulator, the real agent with its spool, a persistent mosquitto cut for 16 s, the agent's default live-first
replay (slowed to 2 messages/s so the backlog is still draining when the open window closes), the centre and
InfluxDB.

What happens: during the outage the agent spools running (provisional) values of the 15 s window open then; after
the broker returns, live-first replay publishes that window's fresh final value before the backlog. The agent now
leaves the backlog's provisional values of a window it has since finalised out (agent.runtime.supersede, logged and
counted): the witness must see none arrive after their window's final value. The centre's separate series stay the
guarantee for a sender that still inverts them (an agent before this change, or one whose finals were spooled by an
earlier process): a stand-in gateway publishes a final value and then a provisional value of the same window, and
InfluxDB must keep the final one as final. The old schema wrote both to one point (time = window start, ``final``
a field), so the last write won and the final value was lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.model import KpiValue, Quality
from agent.wire import encode_kpis
from tests.e2e.agent_harness import AgentProcess, agent_site, dump_yaml, load_yaml, spool_depth
from tests.e2e.test_center_harness import CenterProcess, Publisher, center_config, wait_until
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


def finals_stored(db: InfluxServer, gateway: str | None = None) -> dict[Key, float]:
    where = f" AND \"gateway\" = '{gateway}'" if gateway else ""
    rows = db.query(f'SELECT "value", "window_start", "name" FROM "kpi" WHERE "final" = true{where}', DB)
    if not rows:
        return {}
    cols = rows[0]["columns"]
    out: dict[Key, float] = {}
    for row in rows[0]["values"]:
        rec = dict(zip(cols, row, strict=True))
        if rec["value"] is not None and rec["window_start"] is not None:
            out[(str(rec["name"]), float(rec["window_start"]))] = float(rec["value"])
    return out


@pytest.mark.long(seconds=40)  # an outage, then the replay of its backlog
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
                wait_until(lambda: spool_depth(site) == 0, 90, "the agent's backlog drained")
            finally:
                code = agent.terminate()
            assert code == 0, agent.log()
            assert "kpi replay: provisional values of windows since finalised are not sent" in agent.log()
            assert provisional_after_final(witness.received) == [], "the agent replayed a finalised window's value"
            seen = finals_seen(witness.received)
            wait_until(lambda: all(finals_stored(db).get(k) == v for k, v in seen.items()), 30, "the finals stored")
            # a sender that still inverts them: final 21.06 first, then a stale provisional 6.68 of the same window
            start = time.time() - 60.0
            inverted = [
                kpi_payload(doc["site"], 1, start, 21.06, final=True),
                kpi_payload(doc["site"], 2, start, 6.68, final=False),
            ]
            publisher = Publisher(broker.port, client_id="gw-old")
            try:
                publisher.publish_all(inverted)
            finally:
                publisher.close()
            wait_until(
                lambda: (
                    finals_stored(db, "gw-old").get(("energy_kgce", start)) == 21.06
                    and provisional_stored(db, "gw-old") == 6.68
                ),
                30,
                "both values of gw-old stored",
            )
            assert centre.stop() == 0, centre.log()
        assert finals_stored(db, "gw-old") == {("energy_kgce", start): 21.06}, "the final value was replaced"


def kpi_payload(site: str, seq: int, start: float, value: float, *, final: bool) -> tuple[str, bytes]:
    k = KpiValue(
        "energy_kgce",
        "line1",
        value,
        "kgce",
        "15s",
        start,
        start + WINDOW_S,
        1.0,
        Quality.GOOD,
        start + 20,
        final=final,
    )
    payload = encode_kpis(site=site, gateway="gw-old", boot="b-old", seq=seq, ts=start + 20 + seq, kpis=[k])
    return f"plant/{site}/gw-old/kpi", payload


def provisional_stored(db: InfluxServer, gateway: str) -> float | None:
    rows = db.query(f'SELECT "value" FROM "kpi" WHERE "final" = false AND "gateway" = \'{gateway}\'', DB)
    return float(rows[0]["values"][-1][1]) if rows else None
