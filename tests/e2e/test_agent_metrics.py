"""The running agent's /metrics, scraped over HTTP and read with Prometheus' own text parser: every self-monitoring
item the README lists is there, for every plant device, in base units."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulators.layout import PLANT_LAYOUT
from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.e2e.test_center_harness import wait_until
from tests.servers.mosquitto import mosquitto
from tests.simfixtures import simulator_process
from tests.unit.test_runtime_prometheus import README_ITEMS

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """metric family name -> {sorted labels: value} (sample suffixes such as _total folded into the family)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        m.name: {tuple(sorted(s.labels.items())): s.value for s in m.samples}
        for m in text_string_to_metric_families(text)
    }


def test_running_agent_exports_every_readme_item(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim"), mosquitto(tmp_path / "mq") as broker:
        site = agent_site(tmp_path / "sim" / "site.yaml", broker.port)
        agent = AgentProcess(site).wait_ready()
        try:

            def settled() -> bool:
                m = scrape(agent.metrics_port)
                return (
                    m["energy_agent_mqtt_connected"].get((), 0.0) == 1.0
                    and len(m["energy_agent_device_up"]) == len(PLANT_LAYOUT)
                    # every device polled once (on a loaded machine the eleventh may come after the first ack)
                    and len(m.get("energy_agent_device_requests", {})) == len(PLANT_LAYOUT)
                    and all(v > 0 for v in m["energy_agent_device_requests"].values())
                    and bool(m["energy_agent_mqtt_publish_latency_seconds"])
                    and bool(m["energy_agent_poll_to_spool_seconds"])
                )

            wait_until(settled, 30, "devices polled and messages acknowledged", poll_s=0.5)
            metrics = scrape(agent.metrics_port)
        finally:
            assert agent.terminate() == 0, agent.log()[-3000:]
    # a labelled counter has samples once a label set occurred: no device failed here, so no error kind yet
    missing = [item for item, name in README_ITEMS.items() if not metrics.get(name) and item != "errors by kind"]
    assert missing == []
    assert "energy_agent_device_errors" in metrics  # declared (HELP/TYPE) all the same
    devices = {dict(labels)["device"] for labels in metrics["energy_agent_device_up"]}
    assert devices == set(PLANT_LAYOUT)
    assert all(v == 1.0 for v in metrics["energy_agent_device_up"].values())
    assert all(v > 0 for v in metrics["energy_agent_device_requests"].values())
    latency = dict(metrics["energy_agent_mqtt_publish_latency_seconds"])
    assert 0 < latency[(("quantile", "0.5"),)] < 1.0  # seconds, not milliseconds
    assert {dict(k)["kind"] for k in metrics["energy_agent_spool_messages"]} >= {"samples", "kpi", "status"}
