"""The shipped Grafana dashboard: every InfluxQL query runs against data the ingestor wrote and returns rows, the
window that is still open shows (its KPI points are stamped at window start, not in the future), a day's KPI is
dated that day, the device table lists only devices, and the file imports both through provisioning and through
Grafana's UI. Grafana's macros are expanded the way Grafana would ($timeFilter over the dashboard's own default
range ending now, $__interval, "All" variables)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.model import Grade, KpiValue, Quality, Role, Sample
from agent.wire import StatusMessage, encode_kpis, encode_samples, encode_status
from tests.e2e.test_center_harness import REPO, SITE, CenterProcess, Publisher, center_config, wait_until
from tests.servers.influx import InfluxServer, influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e
GRAFANA = REPO / "deploy" / "center" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "plant-energy-overview.json"
DS_INPUT = "DS_ENERGY_INFLUXDB"

# InfluxQL words the dashboard may write bare; any other bare word must be a double-quoted identifier
# (``name``, ``window``, ``key`` ... are keywords: ``WHERE name = 'x'`` is a syntax error).
_BARE_OK = {
    "select", "from", "where", "and", "or", "group", "by", "as", "fill", "none", "previous", "time", "last",
    "mean", "max", "count", "show", "tag", "values", "with", "key", "true", "false", "now",
}  # fmt: skip


def dashboard() -> dict[str, Any]:
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dash


def panel_queries(dash: dict[str, Any]) -> dict[str, dict[str, str]]:
    """title -> refId -> query, for every panel with targets."""
    return {p["title"]: {t["refId"]: t["query"] for t in p["targets"]} for p in dash["panels"] if p.get("targets")}


def dashboard_queries() -> list[tuple[str, str]]:
    dash = dashboard()
    out = [(v["name"], v["query"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    for title, queries in panel_queries(dash).items():
        out.extend((f"{title} {ref}", q) for ref, q in queries.items())
    return out


def expand(query: str, now: float, kpi: str = ".*") -> str:
    """As Grafana would over the dashboard's default range (``now-24h`` .. ``now``), with "All" selected (or, for
    the trend's KPI selector, the KPI names matching ``kpi``)."""
    assert dashboard()["time"] == {"from": "now-24h", "to": "now"}
    lo, hi = int((now - 86400) * 1000), int(now * 1000)
    return (
        query.replace("$timeFilter", f"time >= {lo}ms and time <= {hi}ms")
        .replace("$__interval", "1m")
        .replace("/^$site$/", "/^.*$/")
        .replace("/^$window$/", "/^.*$/")
        .replace("/^$kpi$/", f"/^{kpi}$/")
    )


def kpi(
    name: str, value: float | None, unit: str, start: float, end: float, *, final: bool, window: str = "15m"
) -> KpiValue:
    graded = name == "sec_clinker"
    return KpiValue(
        name=name,
        scope="kiln1",
        value=value,
        unit=unit,
        window=window,
        window_start=start,
        window_end=end,
        coverage=1.0,
        quality=Quality.GOOD,
        ts=min(end, time.time()),
        grade=Grade.BETWEEN if graded else None,
        distance=2.0 if graded else None,
        reference="test row" if graded else "",
        detail={"final": 1.0 if final else 0.0},
    )


def said_in_detail_only(payload: bytes) -> bytes:
    """Open windows said the way every agent version says it (``detail.final`` 0); the wire derives ``final``."""
    msg = json.loads(payload)
    for k in msg["kpis"]:
        k.pop("final", None)
    return json.dumps(msg).encode()


def agent_health() -> dict[str, Any]:
    """The shape ``Agent.health()`` publishes: devices, and the agent's own figures beside them."""
    return {
        "devices": {
            "m1": {
                "state": "ok",
                "last_success_ts": time.time(),
                "consecutive_failures": 0,
                "last_poll_duration_s": 0.02,
                "requests": 31,
                "errors": {"timeout": 1},
            }
        },
        "polls": 31,
        "loop_lag_s": {"p50": 0.0004, "p99": 0.002, "max": 0.004},
        "poll_jitter_s": {"p50": 0.001, "p99": 0.003},
        "poll_to_spool_s": {"p50": 0.002, "p99": 0.006},
        "spool": {"path": "/x/spool.sqlite", "depth": 4, "bytes": 2048, "dropped_total": 0, "oldest_age_s": 1.5},
        "sink": {"connected": True, "inflight": 0, "published": 35, "publish_latency_ms": {"p50": 3.0, "p99": 9.0}},
    }


def rows(db: InfluxServer, query: str, now: float, kpi: str = ".*") -> list[dict[str, Any]]:
    """Every row of every series, as dicts with the series' tags merged in."""
    out = []
    for series in db.query(expand(query, now, kpi), "energy"):
        for values in series["values"]:
            out.append(dict(series.get("tags", {})) | dict(zip(series["columns"], values, strict=True)))
    return out


def test_dashboard_on_real_influxdb_shows_now_today_and_only_devices(tmp_path: Path) -> None:
    now = time.time()
    block = now - now % 900  # the 15-minute window open now
    midnight = now - now % 86400  # today (UTC) for the day window
    twelve_months = midnight - 335 * 86400
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database("energy")
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": "energy"})
        status = StatusMessage(site=SITE, gateway="gw1", state="online", boot="b1", ts=now, health=agent_health())
        pub = Publisher(broker.port)
        # retained before the centre starts: a starting centre must still learn the gateway's state
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
                # the grading period of the national levels: a rolling 12 months, begun 11 months ago
                kpi("sec_clinker", 103.0, "kgce/t", twelve_months, midnight + 86400, final=False, window="12mo"),
            ]
            for seq, kpis in ((30, done), (31, running)):
                payload = encode_kpis(site=SITE, gateway="gw1", boot="b1", seq=seq, ts=now, kpis=kpis)
                msgs.append((f"plant/{SITE}/gw1/kpi", said_in_detail_only(payload)))
            pub.publish_all(msgs)
            wait_until(lambda: db.scalar("SELECT count(missing) FROM gap", "energy") == 1, 30, "the gap point")
            wait_until(lambda: db.scalar("SELECT count(online) FROM gateway_status", "energy") == 1, 30, "status")
            wait_until(lambda: db.scalar("SELECT count(value) FROM kpi", "energy") == 8, 30, "the KPI points")

            now = time.time()  # Grafana's "now" when the dashboard is opened, after the data arrived
            empty = [title for title, query in dashboard_queries() if not db.query(expand(query, now), "energy")]
            assert empty == []
            with pytest.raises(urllib.error.HTTPError) as bad:  # why every identifier is quoted
                db.query("""SELECT last("value") FROM "kpi" WHERE name = 'sec_clinker'""", "energy")
            assert bad.value.code == 400 and b"error parsing query" in bad.value.read()

            panels = panel_queries(dashboard())
            table = {(r["name"], r["window"]): r for r in rows(db, panels[_title("Unit-energy KPIs now")]["A"], now)}
            # the open window's value, marked provisional (0); before, its point lay in the future and was hidden
            assert table[("sec_clinker", "15m")]["value"] == 107.0
            assert table[("sec_clinker", "15m")]["state"] is False  # the wire's final, derived from detail.final
            # today's day KPI is shown, dated today
            assert table[("sec_clinker", "day")]["window from"] == midnight * 1000
            # the "now" table looks back over the longest window, not the dashboard's last 24 hours
            assert table[("sec_clinker", "12mo")]["value"] == 103.0

            # every KPI, not only the graded ones (issue 17): an ungraded KPI has a row, with no grade
            assert (
                table[("max_demand_kw", "15m")]["value"] == 540.0 and table[("max_demand_kw", "15m")]["grade"] is None
            )
            assert table[("renewable_share", "15m")]["value"] == 0.58

            trend = panels[_title("KPI trend")]
            # the trend's KPI selector: one KPI chosen, only its series
            assert {r["name"] for r in rows(db, trend["A"], now, kpi="sec_clinker")} == {"sec_clinker"}
            assert {r["name"] for r in rows(db, trend["A"], now)} == {"sec_clinker", "max_demand_kw", "renewable_share"}
            (kpi_var,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "kpi"]
            names = [r["value"] for r in rows(db, kpi_var["query"], now)]
            assert sorted(names) == ["max_demand_kw", "renewable_share", "sec_clinker"]
            provisional = {(r["name"], r["window"]): r for r in rows(db, trend["B"], now)}
            assert provisional[("sec_clinker", "day")]["time"] == int(midnight) * 10**9
            assert provisional[("sec_clinker", "15m")]["time"] == int(block) * 10**9
            final_rows = rows(db, trend["A"], now)
            assert all(r["time"] != int(block) * 10**9 for r in final_rows)  # the open window is not final
            final = {(r["name"], r["window"]): r for r in final_rows}
            assert final[("sec_clinker", "15m")]["time"] == int(block - 900) * 10**9
            assert final[("sec_clinker", "15m")]["mean"] == 105.0

            devices = rows(db, panels[_title("Device health")]["A"], now)
            assert [(r["device"], r["requests"]) for r in devices] == [("m1", 31.0)]
            agent = rows(db, panels[_title("Agent self-monitoring")]["A"], now)
            assert [(r["gateway"], r["spool depth"], r["MQTT"]) for r in agent] == [("gw1", 4.0, 1.0)]
            pub.close()
            assert center.stop() == 0


def _title(prefix: str) -> str:
    (title,) = [t for t in panel_queries(dashboard()) if t.startswith(prefix)]
    return title


def _datasource_refs(node: Any, path: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                out.append((f"{path}.{key}", value))
            else:
                out.extend(_datasource_refs(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_datasource_refs(value, f"{path}[{i}]"))
    return out


def test_dashboard_imports_through_provisioning_and_through_the_ui() -> None:
    """UI import replaces ``${DS_...}`` of an ``__inputs`` datasource with the one the user picks; provisioning
    does not, so a datasource variable of the same name resolves it there (default: the provisioned uid)."""
    dash = dashboard()
    (inp,) = dash["__inputs"]
    assert inp == inp | {"name": DS_INPUT, "type": "datasource", "pluginId": "influxdb"}
    refs = _datasource_refs(dash["panels"]) + _datasource_refs(dash["templating"])
    assert len(refs) > 20
    assert {json.dumps(ref) for _, ref in refs} == {json.dumps({"type": "influxdb", "uid": "${" + DS_INPUT + "}"})}
    (var,) = [v for v in dash["templating"]["list"] if v["name"] == DS_INPUT]
    assert var["type"] == "datasource" and var["query"] == "influxdb"
    provisioned = YAML(typ="safe").load((GRAFANA / "provisioning" / "datasources" / "energy-influxdb.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert var["current"]["value"] == source["uid"] and source["type"] == "influxdb"
    imported = json.loads(DASHBOARD.read_text().replace("${" + DS_INPUT + "}", "picked-in-the-ui"))
    assert {ref["uid"] for _, ref in _datasource_refs(imported["panels"])} == {"picked-in-the-ui"}


def unquoted(query: str) -> set[str]:
    """Bare words of an InfluxQL query that are not in ``_BARE_OK`` (identifiers someone forgot to quote)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', " ", query)  # identifiers
    bare = re.sub(r"'(?:[^'\\]|\\.)*'", " ", bare)  # string literals
    bare = re.sub(r"/(?:[^/\\]|\\.)+/", " ", bare)  # regular expressions
    bare = re.sub(r"\$\w+|\$\{\w+\}", " ", bare)  # Grafana variables and macros
    bare = re.sub(r"\b\d+(?:\.\d+)?[a-z]*\b", " ", bare)  # numbers and durations (15m)
    return {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", bare)} - _BARE_OK


def test_panels_where_no_data_means_zero_say_0() -> None:
    """A panel with no rows shows "No data"; where that means zero (no readings were bad, no message was lost), it
    says 0 (issue 17)."""
    defaults = {p["title"]: p.get("fieldConfig", {}).get("defaults", {}) for p in dashboard()["panels"]}
    assert defaults[_title("Readings not good")]["noValue"] == "0"
    assert defaults[_title("Messages lost")]["noValue"].startswith("0")
    assert "noValue" not in defaults[_title("Renewable share")]  # unknown is not 0 %


def test_every_identifier_in_the_queries_is_quoted() -> None:
    assert unquoted('SELECT last(value) FROM "kpi" WHERE name = \'x\' GROUP BY "window"') == {"value", "name"}
    for title, query in dashboard_queries():
        assert unquoted(query) == set(), f"{title}: {query}"
