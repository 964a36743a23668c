"""The page inside the agent process: a password file that is missing at start costs the page, never the polling;
a page on loopback answers, and stops with the agent."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.e2e.test_center_harness import wait_until
from tests.servers.process import free_port
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e


def polls(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("energy_agent_polls_total"))


def test_a_missing_password_file_costs_the_page_not_the_polling(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim", devices=["main-meter"]):
        port = free_port()
        web = {"enabled": True, "host": "0.0.0.0", "port": port, "password_file": "no-such.hash"}
        site = agent_site(tmp_path / "sim" / "site.yaml", free_port(), web=web)
        agent = AgentProcess(site).wait_ready()
        try:
            wait_until(lambda: polls(agent.metrics_port) >= 3, 20, "the agent polls")
            assert "web: the page is not served:" in agent.log() and "no-such.hash" in agent.log()
            with pytest.raises(urllib.error.URLError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        finally:
            assert agent.terminate() == 0, agent.log()[-3000:]


def test_the_page_answers_on_loopback_and_stops_with_the_agent(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim", devices=["main-meter"]):
        port = free_port()
        site = agent_site(tmp_path / "sim" / "site.yaml", free_port(), web={"enabled": True, "port": port})
        agent = AgentProcess(site).wait_ready()
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
            assert page.status == 200 and b"/static/app.js" in page.read()
            assert f"serving the read-only page on http://127.0.0.1:{port}/ (no login)" in agent.log()
        finally:
            assert agent.terminate() == 0, agent.log()[-3000:]
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
