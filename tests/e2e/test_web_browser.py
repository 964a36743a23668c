"""The web page in Debian's headless Chromium against the agent as a process, polling the simulated plant (served
in this test, so a fault can be injected) and publishing to a real mosquitto.

The page listens on every address (0.0.0.0: not loopback), so it asks for the password: without it nothing but
the login form is served; with it the page shows every device and KPI, values that change within 2 s of the poll
that read them, a device failing (reason and hint) while the simulator keeps it silent and its recovery, and the
probe view of a device. Screenshots go to the test's temp dir, and to ``$WEB_SCREENSHOTS`` when set (the README's
come from ``WEB_SCREENSHOTS=docs/img pytest tests/e2e/test_web_browser.py``).
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import pytest

from agent.cli.demo import DEMO_KPI
from agent.web.auth import hash_password
from simulators.__main__ import accelerated_clock
from simulators.layout import PLANT_LAYOUT, plant_units, write_site
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel
from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.e2e.browser import Browser, Page, save
from tests.servers.mosquitto import mosquitto
from tests.servers.process import free_port

pytestmark = pytest.mark.e2e

PASSWORD = "kiln-commissioning-2026"
READ_FUNCTION_CODES = {1, 2, 3, 4}
KPI_FAST = DEMO_KPI | {"publish_interval_s": 5}

# In the page: record, each time a device card is redrawn with a newer poll, how old that poll was (seconds).
WATCH_LAG = """
window.__lags = [];
window.__seen = {};
new MutationObserver(() => {
  const now = Date.now() / 1000;
  for (const card of document.querySelectorAll('[data-device]')) {
    const ts = parseFloat(card.dataset.lastPoll);
    if (ts && ts !== window.__seen[card.dataset.device]) {
      if (window.__seen[card.dataset.device] !== undefined) window.__lags.push(now - ts);
      window.__seen[card.dataset.device] = ts;
    }
  }
}).observe(document.getElementById('devices'), {childList: true});
true
"""


def state_of(device: str) -> str:
    return f"document.querySelector('[data-device=\"{device}\"]')?.dataset.state"


def choose_scope(scope: str) -> str:
    """JavaScript that picks a scope in the KPI table's filter, as a click would."""
    return (
        "(() => { const s = document.getElementById('kpiscope'); "
        f"s.value = '{scope}'; s.dispatchEvent(new Event('change')); return 1; }})()"
    )


async def shoot(page: Page, tmp_path: Path, name: str, full_page: bool = True) -> None:
    path = await page.screenshot(tmp_path / "shots" / name, full_page=full_page)
    out = os.environ.get("WEB_SCREENSHOTS")
    if out:
        save(Path(out) / name, path.read_bytes())


@pytest.mark.long(seconds=24)  # a headless Chromium session against the live page
async def test_the_page_in_a_real_browser(tmp_path: Path) -> None:
    start = math.floor(time.time())
    model = PlantModel(seed=1, start=start)
    async with ModbusSimulator(model, plant_units(), "tcp", clock=accelerated_clock(start, 1.0)) as sim:
        write_site(tmp_path / "site.yaml", "127.0.0.1", sim.port)
        port = free_port()
        web = {"enabled": True, "host": "0.0.0.0", "port": port, "password_hash": hash_password(PASSWORD)}
        with mosquitto(tmp_path / "mq") as broker:
            site = agent_site(tmp_path / "site.yaml", broker.port, kpi=KPI_FAST, web=web)
            agent = AgentProcess(site).wait_ready()
            try:
                async with Browser(tmp_path) as browser:
                    await exercise(browser, sim, agent, port, tmp_path)
            finally:
                assert agent.terminate() == 0, agent.log()[-3000:]
    assert set(sim.served) <= READ_FUNCTION_CODES, f"the agent or its page wrote to the plant: {sim.served}"


async def exercise(browser: Browser, sim: ModbusSimulator, agent: AgentProcess, port: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    page = await browser.open(base + "/")
    # not loopback-only, so: the login form, and nothing else without the session
    await page.wait_for("document.querySelector('input[type=password]') !== null", 15, "the login form")
    assert await page.eval("location.pathname") == "/login"
    status = await page.eval("fetch('/api/snapshot').then(r => r.status)")
    assert status == 401
    await shoot(page, tmp_path, "web-login.png")
    await page.eval("document.getElementById('password').value = 'wrong-password'; document.forms[0].submit(); true")
    await page.wait_for("location.search === '?failed=1'", 15, "a wrong password sent back to the login form")
    await page.eval(f"document.getElementById('password').value = '{PASSWORD}'; document.forms[0].submit(); true")
    await page.wait_for("location.pathname === '/' && !!document.getElementById('devices')", 15, "the page after login")

    # every device, polled, and every KPI line of the configuration
    all_ok = " && ".join(f"{state_of(d)} === 'ok'" for d in PLANT_LAYOUT)
    await page.wait_for(all_ok, 30, "every device shown ok")
    assert await page.eval("document.querySelectorAll('[data-device]').length") == len(PLANT_LAYOUT)
    assert await page.eval("document.getElementById('mqtt-state').dataset.state") == "connected"
    await page.wait_for(
        "[...document.querySelectorAll('[data-kpi]')].some(r => r.dataset.kpi.startsWith('line1/'))",
        40,
        "the clinker line's KPIs in the table",
    )
    kpis = await page.eval("[...document.querySelectorAll('[data-kpi]')].map(r => r.dataset.kpi)")
    scopes = {k.split("/")[0] for k in kpis}
    assert {"line1", "raw-mill", "compressor1", "pump1", "transformer1"} <= scopes, scopes
    await page.eval(choose_scope("pump1"))
    shown = await page.eval("[...document.querySelectorAll('[data-kpi]')].map(r => r.dataset.kpi)")
    assert shown and all(k.startswith("pump1/") for k in shown), shown
    await page.eval(choose_scope(""))

    # values pushed within 2 s of the poll that read them
    await page.eval(WATCH_LAG)
    await page.eval("document.querySelector('[data-open=\"main-meter\"]').open = true")
    first = await page.eval("document.querySelector('[data-device=\"main-meter\"] [data-point]').innerText")
    await page.wait_for("window.__lags.length >= 40", 20, "forty redraws with newer polls")
    lags = await page.eval("window.__lags")
    assert max(lags) < 2.0, sorted(lags)[-5:]
    later = await page.eval("document.querySelector('[data-device=\"main-meter\"] [data-point]').innerText")
    assert later != first  # the voltage moved: values are live, not only timestamps
    await shoot(page, tmp_path, "web-overview.png")

    # a device goes silent: failing with its reason and a hint, then recovers
    sim.model.inject("kiln1", "outage", seconds=8)
    await page.wait_for(f"['failing', 'backing_off'].includes({state_of('kiln1')})", 15, "kiln1 failing")
    reason = await page.eval("document.querySelector('[data-device=\"kiln1\"] .reason').innerText")
    hint = await page.eval("document.querySelector('[data-device=\"kiln1\"] .hint')?.innerText || ''")
    assert "timeout" in reason or "no reply" in reason, reason
    assert "unit_id" in hint, hint
    assert await page.eval(state_of("main-meter")) == "ok"  # one silent device does not stall the others
    await shoot(page, tmp_path, "web-failing.png")
    await page.wait_for("document.getElementById('log').textContent.includes('kiln1')", 5, "kiln1's warning logged")
    await page.wait_for(f"{state_of('kiln1')} === 'ok'", 60, "kiln1 recovered")

    # a reload (systemctl reload) shows on the page
    assert await page.eval("document.getElementById('agent').dataset.reloaded") == ""
    agent.signal(signal.SIGHUP)
    await page.wait_for("document.getElementById('agent').dataset.reloaded !== ''", 15, "the reload time shown")

    # commissioning views: probe one device with --orders, and the raw registers of the last poll
    await page.eval(
        "[...document.querySelectorAll('[data-device=\"kiln1-meter\"] button')]"
        ".find(b => b.textContent.startsWith('probe')).click(); true"
    )
    await page.wait_for("document.getElementById('output').textContent.includes('exit status')", 45, "probe output")
    output = await page.eval("document.getElementById('output').textContent")
    assert "energy-agent probe" in output and "--orders" in output and "kiln1-meter" in output, output
    assert "(exit status 0)" in output, output
    await page.eval(
        "document.querySelector('[data-open=\"kiln1-meter\"]').open = true;"
        "[...document.querySelectorAll('[data-device=\"kiln1-meter\"] button')]"
        ".find(b => b.textContent.startsWith('raw')).click(); true"
    )
    await page.wait_for("document.querySelector('[data-device=\"kiln1-meter\"] td.raw')?.textContent", 10, "raw")
    await page.eval("document.getElementById('validate').click(); true")
    await page.wait_for(
        "document.getElementById('output').textContent.includes('energy-agent validate')", 45, "validate"
    )
    await page.wait_for("document.getElementById('output').textContent.includes('(exit status 0)')", 45, "validate ok")

    # a phone-sized screen, in Chinese
    await page.eval("document.getElementById('lang').click(); true")
    await page.viewport(390, 844, mobile=True)
    await page.wait_for("document.querySelector('h2').textContent === '设备'", 5, "Chinese labels")
    await page.eval("window.scrollTo(0, 0); true")
    await shoot(page, tmp_path, "web-phone-zh.png", full_page=False)
    width = await page.eval("document.documentElement.scrollWidth")
    assert width <= 400, f"the phone view scrolls sideways ({width} px)"
