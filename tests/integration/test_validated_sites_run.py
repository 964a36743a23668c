"""A site that ``validate`` accepts runs: the property behind issue 17's crash class (a misspelt time zone passed
validate and ``run`` died at the first KPI sample with a 69-line traceback, so systemd restarted it five times).

Hypothesis varies the Modbus simulator's site file (which devices, intervals, timeouts, retries; the shipped
profiles are not touched), adds an OPC UA PLC read from the OPC UA simulator (subscribe or poll, sometimes a
missing node among its points), varies the demo's KPI section (windows, shifts, time zones with odd offsets,
grading windows, publish interval, coverage), and the spool, monitoring and MQTT sections. Every variant is
compiled as ``validate`` compiles it; each one accepted runs for a few seconds under the real runtime (``Agent``)
against both simulators and mosquitto. It must stop cleanly when asked, and nothing may be logged with a
traceback (no exc_info, no asyncio "exception was never retrieved", no "bug")."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from agent.cli.demo import DEMO_KPI
from agent.errors import ConfigError
from agent.runtime.agent import Agent
from agent.runtime.compile import compile_site
from tests.integration.opcua_sim import NAMESPACE, point, start_sim
from tests.servers.mosquitto import mosquitto
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e
RUN_S = 3.0
ZONES = ["UTC", "Asia/Shanghai", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns", "Europe/Berlin"]
WINDOWS = ["1m", "5m", "15m", "1h", "shift", "day"]
OPCUA_VALUES = ["coal_feed_tph", "production_rate_tph", "temperature_c", "active_power_kw", "coal_t"]


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], int, str]]:
    """The Modbus and OPC UA simulators (as processes) and mosquitto, shared by every example: (Modbus simulator's
    site doc, broker port, OPC UA endpoint)."""
    work = tmp_path_factory.mktemp("plant")
    opcua = start_sim(work / "opcua")
    try:
        with simulator_process(work), mosquitto(work / "mq") as broker:
            doc = YAML(typ="safe").load((work / "site.yaml").read_text())
            yield doc, broker.port, opcua.endpoint
    finally:
        opcua.proc.stop()


@st.composite
def sites(draw: st.DrawFn, base: dict[str, Any], broker_port: int, endpoint: str) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc.pop("state_dir", None)
    names = [d["name"] for d in doc["devices"]]
    with_kpi = draw(st.booleans())
    keep = names if with_kpi else draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    doc["devices"] = [d for d in doc["devices"] if d["name"] in keep]
    for d in doc["devices"]:
        d["interval_s"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
        if draw(st.booleans()):
            d["timeout_ms"] = draw(st.sampled_from([100, 300, 1000]))
        if draw(st.booleans()):
            d["retries"] = draw(st.integers(0, 2))
    if draw(st.booleans()):  # an OPC UA PLC beside the Modbus devices (a wrong node id among its points, sometimes)
        points = [point("kiln1", v) for v in draw(st.lists(st.sampled_from(OPCUA_VALUES), min_size=1, unique=True))]
        if draw(st.booleans()):
            points.append({"name": "ghost", "node_id": f"nsu={NAMESPACE};s=kiln1.no_such_value"})
        doc["devices"].append(
            {
                "name": "plc-kiln1",
                "protocol": "opcua",
                "endpoint": endpoint,
                "security": {"policy": "None", "mode": "None", "allow_none": True},
                "mode": draw(st.sampled_from(["subscribe", "poll"])),
                "interval_s": draw(st.sampled_from([0.5, 1.0, 2.0])),
                "points": points,
            }
        )
    doc["timezone"] = draw(st.sampled_from(ZONES))
    if with_kpi:
        kpi = copy.deepcopy(DEMO_KPI)
        kpi["windows"] = draw(st.lists(st.sampled_from(WINDOWS), min_size=1, max_size=3, unique=True))
        kpi["publish_interval_s"] = draw(st.sampled_from([1, 2, 10]))
        kpi["coverage_min"] = draw(st.sampled_from([0.0, 0.5, 0.8, 1.0]))
        if draw(st.booleans()):
            kpi["shifts"] = draw(st.sampled_from([["00:00", "08:00", "16:00"], ["06:30", "18:30"], ["23:45"]]))
        line = kpi["lines"][0]
        if draw(st.booleans()):
            line["grade_windows"] = draw(st.lists(st.sampled_from(["1m", "day", "month"]), min_size=1, unique=True))
        if draw(st.booleans()):
            line["shorter_grades"] = "none"
        doc["kpi"] = kpi
    if draw(st.booleans()):
        doc["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": "prop", "reconnect_min_s": 0.2}
    doc["spool"] = {"max_bytes": draw(st.sampled_from([1_048_576, 16_777_216]))}
    doc["monitoring"] = {"status_interval_s": draw(st.sampled_from([1, 5, 30])), "prometheus_port": 0}
    return doc


class Tracebacks(logging.Handler):
    """Every record that carries a traceback or says an exception went unhandled."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info or "never retrieved" in text or " bug " in f" {text} " or "Traceback" in text:
            self.found.append(self.format(record))


async def run_for(site: Path, seconds: float) -> None:
    agent = Agent(site, install_signal_handlers=False, flush_timeout_s=1.0)
    task = asyncio.create_task(agent.run())
    done, _ = await asyncio.wait({task}, timeout=seconds)
    assert not done, f"the agent ended by itself: {task.exception() if task.done() else ''}"
    agent.stop()
    await asyncio.wait_for(task, 30)


@pytest.mark.long(seconds=25)  # every generated site runs for seconds
def test_every_site_validate_accepts_runs_without_a_traceback(
    plant: tuple[dict[str, Any], int, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base, broker_port, endpoint = plant
    ran: list[tuple[bool, bool]] = []  # per example that validated and ran: (with KPIs, with the OPC UA PLC)

    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        doc = data.draw(sites(base, broker_port, endpoint))
        work = tmp_path_factory.mktemp("site")
        doc["state_dir"] = str(work / "state")
        site = work / "site.yaml"
        with site.open("w") as f:
            YAML(typ="safe").dump(doc, f)
        try:
            compile_site(site)  # what validate does
        except ConfigError:
            assume(False)
        catcher = Tracebacks()
        root = logging.getLogger()
        root.addHandler(catcher)
        try:
            asyncio.run(run_for(site, RUN_S))
        finally:
            root.removeHandler(catcher)
        assert catcher.found == [], "\n".join(catcher.found)
        ran.append(("kpi" in doc, any(d.get("protocol") == "opcua" for d in doc["devices"])))

    check()
    # the property was exercised: with and without KPIs, with and without the OPC UA PLC
    assert len(ran) >= 4 and {k for k, _ in ran} == {True, False} and {o for _, o in ran} == {True, False}, ran
