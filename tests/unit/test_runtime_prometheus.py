"""Prometheus text exposition: conventions checked with Prometheus' own parser, and a real loopback HTTP scrape."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from agent.runtime.prometheus import Family, PrometheusServer, families, render

# What README's self-monitoring bullet promises, and the metric that carries each item.
README_ITEMS = {
    "per device last success": "energy_agent_device_last_success_timestamp_seconds",
    "consecutive failures": "energy_agent_device_consecutive_failures",
    "poll duration": "energy_agent_device_poll_duration_seconds",
    "requests": "energy_agent_device_requests",
    "retries": "energy_agent_device_retries",
    "connection drops": "energy_agent_device_connection_drops",
    "errors by kind": "energy_agent_device_errors",
    "polls": "energy_agent_polls",
    "event-loop lag": "energy_agent_loop_lag_seconds",
    "poll jitter": "energy_agent_poll_jitter_seconds",
    "poll-to-spool latency": "energy_agent_poll_to_spool_seconds",
    "spool depth": "energy_agent_spool_messages",
    "spool drops": "energy_agent_spool_dropped_messages",
    "publisher state": "energy_agent_mqtt_connected",
    "publish latency": "energy_agent_mqtt_publish_latency_seconds",
}


def health() -> dict[str, Any]:
    """A snapshot shaped like ``Agent.health()`` (what the status topic publishes)."""
    device = {
        "state": "ok",
        "last_success_ts": 1_764_000_000.5,
        "consecutive_failures": 0,
        "last_poll_duration_s": 0.021,
        "requests": 120,
        "retries": 3,
        "connection_drops": 2,
        "errors": {"timeout": 2, "ILLEGAL DATA ADDRESS": 1},
    }
    return {
        "devices": {"kiln1-meter": device, "pump1": device | {"state": "failed", "consecutive_failures": 4}},
        "polls": 240,
        "loop_lag_s": {"p50": 0.0004, "p99": 0.003, "max": 0.011},
        "poll_jitter_s": {"p50": 0.001, "p99": 0.004},
        "poll_to_spool_s": {"p50": 0.002, "p99": 0.009},
        "spool": {
            "path": "/var/lib/energy-agent/spool.sqlite",
            "depth": 7,
            "bytes": 4096,
            "max_bytes": 1 << 30,
            "oldest_ts": None,
            "oldest_age_s": 2.5,
            "depth_by_kind": {"samples": 5, "kpi": 2},
            "dropped_full": {"samples": 3},
            "dropped_expired": {},
            "dropped_total": 3,
            "fsync": "interval",
        },
        "sink": {
            "connected": True,
            "inflight": 2,
            "published": 300,
            "acked": 298,
            "refused": 1,
            "rejected": 0,
            "connects": 2,
            "failures": 1,
            "replaying": False,
            "publish_latency_ms": {"p50": 4.0, "p99": 12.0, "max": 30.0},
            "last_error": "",
        },
    }


def parsed() -> dict[str, Metric]:
    return {m.name: m for m in text_string_to_metric_families(render(families(health())))}


def sample(metric: Metric, **labels: str) -> float:
    (value,) = [s.value for s in metric.samples if s.labels == labels]
    return float(value)


def test_every_readme_item_is_exported() -> None:
    metrics = parsed()
    missing = {item: name for item, name in README_ITEMS.items() if name not in metrics or not metrics[name].samples}
    assert missing == {}


def test_exposition_conventions_hold_under_prometheus_parser() -> None:
    metrics = parsed()
    text = render(families(health()))
    for name, metric in metrics.items():
        assert metric.documentation, f"{name} has no HELP"
        assert metric.type in ("gauge", "counter", "summary"), f"{name}: TYPE {metric.type}"
        assert name.startswith("energy_agent_")
        if metric.type == "counter":
            assert f"# TYPE {name}_total counter" in text  # the parser drops _total from a counter's name
            assert all(s.name == f"{name}_total" for s in metric.samples)
        else:
            assert not name.endswith("_total")
        for s in metric.samples:
            if metric.type == "summary":
                assert 0.0 <= float(s.labels["quantile"]) <= 1.0, s
            else:
                assert "quantile" not in s.labels, f"{name}: quantile label on a {metric.type}"
            assert "figure" not in s.labels, f"{name} mixes meanings under a label"
        if set(name.split("_")) & {"latency", "lag", "jitter", "duration", "age"}:
            assert name.endswith("_seconds"), f"{name}: time in base units"


def test_values_are_in_base_units_with_labels_for_the_parts() -> None:
    m = parsed()
    latency = m["energy_agent_mqtt_publish_latency_seconds"]
    assert sample(latency, quantile="0.5") == 0.004 and sample(latency, quantile="0.99") == 0.012
    assert sample(latency, quantile="1") == 0.03
    assert sample(m["energy_agent_device_up"], device="pump1") == 0.0
    assert sample(m["energy_agent_device_up"], device="kiln1-meter") == 1.0
    assert sample(m["energy_agent_device_errors"], device="pump1", kind="ILLEGAL DATA ADDRESS") == 1.0
    spool = m["energy_agent_spool_messages"]
    assert {s.labels["kind"]: s.value for s in spool.samples} == {"kpi": 2.0, "samples": 5.0, "status": 0.0}
    dropped = m["energy_agent_spool_dropped_messages"]
    assert sample(dropped, kind="samples", reason="full") == 3.0
    assert sample(dropped, kind="kpi", reason="expired") == 0.0  # present from the start, so rate() works
    assert sample(m["energy_agent_spool_bytes"]) == 4096.0
    assert sample(m["energy_agent_mqtt_connected"]) == 1.0
    assert sample(m["energy_agent_mqtt_dropped_messages"], reason="refused") == 1.0
    nothing_yet = health() | {"poll_to_spool_s": {"p50": None, "p99": None}}
    (summary,) = [f for f in families(nothing_yet) if f.name == "energy_agent_poll_to_spool_seconds"]
    assert summary.samples == []  # nothing measured yet: no sample rather than a fake 0


def test_render_escapes_labels_and_help_and_spells_special_values() -> None:
    text = render(
        [
            Family("energy_agent_device_up", "gauge", "1 when up\\down", [({"device": 'kiln"1\n'}, 1.0)]),
            Family("x_seconds", "gauge", "odd", [({"k": "a"}, math.inf), ({"k": "b"}, math.nan)]),
        ]
    )
    assert text == (
        "# HELP energy_agent_device_up 1 when up\\\\down\n"
        "# TYPE energy_agent_device_up gauge\n"
        'energy_agent_device_up{device="kiln\\"1\\n"} 1.0\n'
        "# HELP x_seconds odd\n"
        "# TYPE x_seconds gauge\n"
        'x_seconds{k="a"} +Inf\n'
        'x_seconds{k="b"} NaN\n'
    )
    (up, odd) = text_string_to_metric_families(text)
    assert up.samples[0].labels == {"device": 'kiln"1\n'}
    assert math.isinf(odd.samples[0].value) and math.isnan(odd.samples[1].value)


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def test_scrape_serves_current_figures() -> None:
    value = {"n": 1.0}
    async with PrometheusServer("127.0.0.1", 0, lambda: [Family("x_total", "counter", "x", [({}, value["n"])])]) as srv:
        first = await _get(srv.port, "/metrics")
        value["n"] = 2.0
        second = await _get(srv.port, "/metrics")
        missing = await _get(srv.port, "/other")
    assert first.startswith(b"HTTP/1.0 200 OK") and first.endswith(b"x_total 1.0\n")
    assert second.endswith(b"x_total 2.0\n")
    assert missing.startswith(b"HTTP/1.0 404")
