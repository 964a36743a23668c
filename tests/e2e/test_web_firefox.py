"""The web page in Debian's Firefox ESR (headless, WebDriver BiDi) against the agent as a process polling the plant
simulator: the login form first (the page listens on 0.0.0.0), then every device and KPI shown from the WebSocket push, values moving, Chinese labels, and a phone-sized
screen without sideways scrolling. Chromium's test (test_web_browser.py) covers login, faults and the views."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli.demo import DEMO_KPI
from agent.web.auth import hash_password
from simulators.layout import PLANT_LAYOUT
from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.e2e.browser import save
from tests.e2e.firefox import Firefox
from tests.servers.mosquitto import mosquitto
from tests.servers.process import free_port
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e

PASSWORD = "kiln-commissioning-2026"


async def test_the_page_in_firefox(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim"), mosquitto(tmp_path / "mq") as broker:
        port = free_port()
        kpi = DEMO_KPI | {"publish_interval_s": 5}
        web = {"enabled": True, "host": "0.0.0.0", "port": port, "password_hash": hash_password(PASSWORD)}
        site = agent_site(tmp_path / "sim" / "site.yaml", broker.port, kpi=kpi, web=web)
        agent = AgentProcess(site).wait_ready()
        try:
            async with Firefox(tmp_path) as ff:
                await ff.goto(f"http://127.0.0.1:{port}/")
                assert await ff.eval("location.pathname") == "/login"  # not loopback-only: the login form first
                assert await ff.eval("fetch('/api/snapshot').then(r => r.status)") == 401
                await ff.eval(
                    f"document.getElementById('password').value = '{PASSWORD}'; document.forms[0].submit(); 1"
                )
                await ff.wait_for("location.pathname === '/' && !!document.getElementById('devices')", 15, "logged in")
                every = " && ".join(
                    f"document.querySelector('[data-device=\"{d}\"]')?.dataset.state === 'ok'" for d in PLANT_LAYOUT
                )
                await ff.wait_for(every, 30, "every device ok")
                await ff.wait_for("document.querySelectorAll('[data-kpi^=\"line1/\"]').length > 0", 30, "line1 KPIs")
                poll = "document.querySelector('[data-device=\"main-meter\"]').dataset.lastPoll"
                first = await ff.eval(poll)
                await ff.wait_for(f"{poll} !== '{first}'", 5, "a newer poll pushed")
                assert await ff.eval("document.getElementById('conn').dataset.i18n") == "live"
                await ff.eval("document.getElementById('lang').click(); true")
                assert await ff.eval("document.querySelector('h2').textContent") == "设备"
                await ff.viewport(390, 844)
                await ff.wait_for("document.documentElement.clientWidth <= 390", 5, "the phone viewport")
                width = await ff.eval("document.documentElement.scrollWidth")
                assert width <= 400, f"the phone view scrolls sideways ({width} px)"
                shot = await ff.screenshot(tmp_path / "web-firefox-phone.png")
                if os.environ.get("WEB_SCREENSHOTS"):
                    save(Path(os.environ["WEB_SCREENSHOTS"]) / shot.name, shot.read_bytes())
        finally:
            assert agent.terminate() == 0, agent.log()[-3000:]
