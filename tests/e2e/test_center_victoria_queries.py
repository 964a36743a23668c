"""The dashboard for a VictoriaMetrics centre: every MetricsQL query of deploy/center/victoriametrics/queries.yaml
answers on data the ingestor wrote into Debian's VictoriaMetrics (with the shipped relabel.yml), and gives the
values the InfluxQL dashboard gives on InfluxDB (the same data as tests/e2e/test_center_dashboard.py): the open
window's KPI marked provisional, the last closed window as final, today's day KPI dated today, the device table,
the gap. And why relabel.yml exists: VictoriaMetrics turns a string field into a series of zeros."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.center.config import InfluxConfig
from agent.center.influx import make_writer
from agent.model import Quality, Role, Sample
from agent.wire import StatusMessage, encode_kpis, encode_samples, encode_status
from tests.e2e.test_center_dashboard import agent_health, kpi, said_in_detail_only
from tests.e2e.test_center_harness import REPO, SITE, CenterProcess, Publisher, center_config, wait_until
from tests.servers.mosquitto import mosquitto
from tests.servers.victoria import VictoriaServer, victoria

pytestmark = pytest.mark.e2e
VM_DEPLOY = REPO / "deploy" / "center" / "victoriametrics"
INTERVAL_S = 900  # $__interval of the range panels in this test


def panels() -> list[dict[str, Any]]:
    doc: dict[str, Any] = YAML(typ="safe").load((VM_DEPLOY / "queries.yaml").read_text())
    out: list[dict[str, Any]] = doc["panels"]
    return out


def expand(query: str) -> str:
    """As Grafana would with "All" selected, over the last day, with a 15-minute interval."""
    return (
        query.replace('"$site"', '".*"')
        .replace('"$window"', '".*"')
        .replace("$__interval", f"{INTERVAL_S}s")
        .replace("$__range", "1d")
    )


def run(vm: VictoriaServer, entry: dict[str, Any], query: str, now: float) -> list[dict[str, Any]]:
    if entry["kind"] == "instant":
        return vm.query(expand(query), now)
    step = {"15m": 900}.get(entry.get("step", ""), INTERVAL_S)
    return vm.query_range(expand(query), now - 86400, now, step)


def queries(title: str, ref: str = "A") -> dict[str, str]:
    (entry,) = [p for p in panels() if p["panel"] == title and p["ref"] == ref]
    return dict(entry.get("columns") or {"": entry["query"]})


def by_kpi(result: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(r["metric"]["name"], r["metric"]["window"]): float(r["value"][1]) for r in result}


def test_every_documented_query_answers_with_the_dashboards_values(tmp_path: Path) -> None:
    now = time.time()
    block = now - now % 900
    midnight = now - now % 86400
    twelve_months = midnight - 335 * 86400
    with mosquitto(tmp_path / "mq") as broker, victoria(tmp_path / "vm", relabel=VM_DEPLOY / "relabel.yml") as vm:
        cfg = center_config(broker.port, {"kind": "victoriametrics", "url": vm.url})
        status = StatusMessage(site=SITE, gateway="gw1", state="online", boot="b1", ts=now, health=agent_health())
        pub = Publisher(broker.port)
        pub.client.publish(f"plant/{SITE}/gw1/status", encode_status(status), qos=1, retain=True).wait_for_publish(10)
        with CenterProcess(tmp_path / "c", cfg) as center:
            msgs = []
            for seq in range(30):
                ts = now - 1800 + 60 * seq
                samples = [
                    Sample("m1", "P", 500.0 + seq, "kW", Quality.GOOD, ts, role=Role.ACTIVE_POWER_KW),
                    Sample("m1", "T", None, "°C", Quality.BAD, ts, reason="timeout after 1000 ms"),
                ]
                payload = encode_samples(
                    site=SITE, gateway="gw1", boot="b1", seq=seq, device="m1", ts=ts, tags={}, samples=samples
                )
                if seq != 10:  # one lost message: a gap
                    msgs.append((f"plant/{SITE}/gw1/m1/samples", payload))
            done = [
                kpi("sec_clinker", 105.0, "kgce/t", block - 900, block, final=True),
                kpi("max_demand_kw", 530.0, "kW", block - 900, block, final=True),
                kpi("renewable_share", 0.62, "1", block - 900, block, final=True),
            ]
            running = [
                kpi("sec_clinker", 107.0, "kgce/t", block, block + 900, final=False),
                kpi("max_demand_kw", 540.0, "kW", block, block + 900, final=False),
                kpi("renewable_share", 0.58, "1", block, block + 900, final=False),
                kpi("sec_clinker", 104.0, "kgce/t", midnight, midnight + 86400, final=False, window="day"),
                kpi("sec_clinker", 103.0, "kgce/t", twelve_months, midnight + 86400, final=False, window="12mo"),
            ]
            for seq, kpis in ((30, done), (31, running)):
                msgs.append(
                    (
                        f"plant/{SITE}/gw1/kpi",
                        said_in_detail_only(
                            encode_kpis(site=SITE, gateway="gw1", boot="b1", seq=seq, ts=now, kpis=kpis)
                        ),
                    )
                )
            pub.publish_all(msgs)

            def count(q: str) -> float:
                vm.flush()
                rows = vm.query(q, time.time())
                return float(rows[0]["value"][1]) if rows else 0.0

            wait_until(lambda: count("sum(count_over_time(kpi_value[400d]))") == 8, 30, "the KPI points", poll_s=0.3)
            wait_until(lambda: count("sum(count_over_time(gap_missing[1d]))") == 1, 30, "the gap point", poll_s=0.3)
            wait_until(lambda: count("sum(count_over_time(gateway_status_online[1d]))") >= 1, 30, "the status")
            pub.close()
            assert center.stop() == 0

        now = time.time()  # Grafana's "now" when the dashboard is opened
        empty = []
        for entry in panels():
            if "kind" not in entry:  # a panel with no equivalent: it must say why
                assert entry["not_available"]
                continue
            for column, q in (entry.get("columns") or {"": entry["query"]}).items():
                if not run(vm, entry, q, now):
                    empty.append(f"{entry['panel']} {entry['ref']} {column}")
        assert empty == []

        kpis_now = queries("Unit-energy KPIs now")
        entry = {"kind": "instant"}
        value = by_kpi(run(vm, entry, kpis_now["value"], now))
        # graded KPIs only (grade_level >= 0), the open window's value, today's day, the 12 months
        assert value == {("sec_clinker", "15m"): 107.0, ("sec_clinker", "day"): 104.0, ("sec_clinker", "12mo"): 103.0}
        assert by_kpi(run(vm, entry, kpis_now["state"], now))[("sec_clinker", "15m")] == 0.0  # provisional
        assert by_kpi(run(vm, entry, kpis_now["grade"], now))[("sec_clinker", "15m")] == 1.0  # between
        assert by_kpi(run(vm, entry, kpis_now["window from"], now))[("sec_clinker", "day")] == midnight * 1000

        renewable_final = run(vm, entry, queries("Renewable share", "A")[""], now)
        renewable_open = run(vm, entry, queries("Renewable share", "B")[""], now)
        assert [float(r["value"][1]) for r in renewable_final] == [0.62]
        assert [float(r["value"][1]) for r in renewable_open] == [0.58]

        ranged = {"kind": "range"}
        final = run(vm, ranged, queries("KPI trend", "A")[""], now)
        provisional = run(vm, ranged, queries("KPI trend", "B")[""], now)
        final_sec = [r for r in final if (r["metric"]["name"], r["metric"]["window"]) == ("sec_clinker", "15m")]
        assert [sorted({float(v) for _, v in r["values"]}) for r in final_sec] == [[105.0]]  # the open one is not
        assert {float(v) for r in provisional if r["metric"]["name"] == "sec_clinker" for _, v in r["values"]} == {
            107.0,
            104.0,
        }

        online = run(vm, ranged, queries("Gateways online")[""], now)
        assert [(r["metric"]["gateway"], r["values"][-1][1]) for r in online] == [("gw1", "1")]
        device = queries("Device health")
        requests = run(vm, entry, device["requests"], now)
        assert [(r["metric"]["device"], r["value"][1]) for r in requests] == [("m1", "31")]
        gaps = queries("Messages lost between gateway and centre")
        assert [r["value"][1] for r in run(vm, entry, gaps["missing"], now)] == ["1"]
        assert [r["value"][1] for r in run(vm, entry, gaps["last first_seq"], now)] == ["10"]

        vm.flush()
        assert vm.export('{__name__=~"sample_quality|sample_reason|kpi_grade|gateway_status_state|gap_boot"}') == []
        assert len(vm.export('{__name__="sample_value"}')) == 1  # P only: T was bad, with no value


def test_without_relabeling_a_string_field_is_a_series_of_zeros(tmp_path: Path) -> None:
    with victoria(tmp_path / "vm") as vm:
        writer = make_writer(InfluxConfig(kind="victoriametrics", url=vm.url, precision="s"))
        writer.write(b'sample,site=s,point=p value=2.5,quality="good",reason="x" 1764000000\n')
        writer.close()
        vm.flush()
        got = {s["metric"]["__name__"]: s["values"] for s in vm.export('{__name__=~"sample_.*"}')}
        assert got == {"sample_value": [2.5], "sample_quality": [0], "sample_reason": [0]}
