"""Every InfluxQL query of the shipped Grafana dashboard runs without error against data the ingestor wrote, and
returns rows. Grafana's macros are expanded the way Grafana would ($timeFilter, $__interval, "All" variables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.model import Grade, KpiValue, Quality, Role, Sample
from agent.wire import StatusMessage, encode_kpis, encode_samples, encode_status
from tests.e2e.test_center_harness import REPO, SITE, T0, CenterProcess, Publisher, center_config, wait_until
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e
DASHBOARD = REPO / "deploy" / "center" / "grafana" / "dashboards" / "plant-energy-overview.json"


def dashboard_queries() -> list[tuple[str, str]]:
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    out = [(v["name"], v["query"]) for v in dash["templating"]["list"]]
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["query"]))
    return out


def expand(query: str) -> str:
    lo, hi = int(T0 - 86400) * 10**9, int(T0 + 86400) * 10**9
    return (
        query.replace("$timeFilter", f"time >= {lo} AND time <= {hi}")
        .replace("$__interval", "1m")
        .replace("/^$site$/", "/^(.*)$/")
        .replace("/^$window$/", "/^(.*)$/")
    )


def kpi(name: str, value: float, unit: str, grade: Grade | None = None, ts: float = T0 + 900) -> KpiValue:
    return KpiValue(
        name=name,
        scope="kiln1",
        value=value,
        unit=unit,
        window="15m",
        window_start=ts - 900,
        window_end=ts,
        coverage=1.0,
        quality=Quality.GOOD,
        ts=ts,
        grade=grade,
        distance=2.0 if grade else None,
        reference="test row" if grade else "",
    )


def test_every_dashboard_query_runs_and_returns_rows(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database("energy")
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": "energy"})
        status = StatusMessage(
            site=SITE,
            gateway="gw1",
            state="online",
            boot="b1",
            ts=T0,
            health={"devices": {"m1": {"state": "ok", "consecutive_failures": 0, "last_poll_duration_s": 0.02}}},
        )
        pub = Publisher(broker.port)
        # retained before the centre starts: a starting centre must still learn the gateway's state
        pub.client.publish(f"plant/{SITE}/gw1/status", encode_status(status), qos=1, retain=True).wait_for_publish(10)
        with CenterProcess(tmp_path / "c", cfg) as center:
            msgs = []
            for seq in range(30):
                ts = T0 + 60 * seq
                samples = [
                    Sample("m1", "P", 500.0 + seq, "kW", Quality.GOOD, ts, role=Role.ACTIVE_POWER_KW),
                    Sample("m1", "T", None, "°C", Quality.BAD, ts, reason="timeout after 1000 ms"),
                ]
                payload = encode_samples(
                    site=SITE, gateway="gw1", boot="b1", seq=seq, device="m1", ts=ts, tags={}, samples=samples
                )
                if seq != 10:  # one lost message: a gap
                    msgs.append((f"plant/{SITE}/gw1/m1/samples", payload))
            kpis = [
                kpi("sec_clinker", 105.0, "kgce/t", Grade.BETWEEN),
                kpi("max_demand_kw", 530.0, "kW"),
                kpi("renewable_share", 0.62, "1"),
            ]
            msgs.append(
                (f"plant/{SITE}/gw1/kpi", encode_kpis(site=SITE, gateway="gw1", boot="b1", seq=30, ts=T0, kpis=kpis))
            )
            pub.publish_all(msgs)
            wait_until(lambda: db.scalar("SELECT count(missing) FROM gap", "energy") == 1, 30, "the gap point")
            wait_until(lambda: db.scalar("SELECT count(online) FROM gateway_status", "energy") == 1, 30, "status")
            empty = []
            for title, query in dashboard_queries():
                if not db.query(expand(query), "energy"):
                    empty.append(title)
            assert empty == []
            pub.close()
            assert center.stop() == 0
