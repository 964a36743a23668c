"""The whole agent path into the accounts, on a simulated clock: the agent's runtime (``agent.runtime.Agent``, as
``energy-agent run`` builds it: its Modbus source, KPI engine, SQLite spool and MQTT sink) polls the plant simulator
over Modbus TCP on loopback, publishes through a real mosquitto into ``energy-center run`` (a process) and InfluxDB
1.x, and the accounts computed from InfluxDB for that period match the simulator's ground truth within 0.5 %.

Simulated: the plant (simulators.plant.PlantModel behind simulators.modbus_server.ModbusSimulator) and the time.
The agent's poll schedule and every timestamp it stamps follow one virtual clock that jumps to the next poll slot
as soon as the previous poll is spooled (the same injection as tests/integration/test_kpi_groundtruth.py), so an
hour of plant time (10 s polls, 11 devices, a main-meter replacement half way) takes well under a minute. The
month-long part (November with an outage and a meter replacement, every upload record) is
tests/e2e/test_accounts_month.py, which feeds the centre from the agent's wire encoder; this test shows that the
Modbus registers (uint32 with scale), the agent's codec, spool, sink and the centre's intake lose nothing the
accounts need.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.center.accounts.account import Ledger
from agent.center.accounts.config import AccountsConfig
from agent.center.accounts.metered import InfluxReader
from agent.center.accounts.service import AccountsService
from agent.center.config import InfluxConfig
from agent.runtime.agent import Agent
from simulators.layout import PLANT_LAYOUT, plant_units, site_document
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel
from tests.e2e.accounts_month import account_items, truth, unit_section
from tests.e2e.test_center_harness import CenterProcess, center_config
from tests.integration.test_kpi_groundtruth import KPI_SECTION
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e

ZONE = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 2, 11, 55, tzinfo=ZONE).timestamp()  # the agent's first poll (midday: PV produces)
T1 = T0 + 3900.0  # ... and its last: the day's account holds exactly [T0, T1], compared with the simulator's
POLL_S = 10.0
RESET_AT = T0 + 1800.0  # the main meter is replaced: its import register starts again at 0


class SimClock:
    """The polls' clock: ``sleep_until`` jumps to the slot at once; it never goes past ``last``, where the agent's
    schedule waits until the agent is stopped. ``at`` runs actions when the clock reaches their time."""

    def __init__(self, t: float, last: float, at: dict[float, Callable[[], None]]) -> None:
        self.t = t
        self.last = last
        self.at = dict(at)
        self.reached_last = asyncio.Event()

    def now(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        if t > self.last:
            self.reached_last.set()
            await asyncio.Event().wait()  # until cancelled by the agent's shutdown
        self.t = max(self.t, t)
        for when in [w for w in self.at if w <= self.t]:
            self.at.pop(when)()
        await asyncio.sleep(0)


async def eventually(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


def agent_site(path: Path, sim_port: int, broker_port: int) -> Path:
    doc: dict[str, Any] = site_document("127.0.0.1", sim_port, interval_s=POLL_S, state_dir=str(path / "state"))
    doc["poll_phase"] = "aligned"  # every device read at the slot (the day's last reading is at T1 exactly)
    doc["kpi"] = KPI_SECTION
    doc["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": "agent-path", "reconnect_min_s": 0.2}
    site = path / "site.yaml"
    with site.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return site


@pytest.mark.long(seconds=18)  # an hour of plant time through the real agent
async def test_an_hour_through_the_real_agent_matches_ground_truth(tmp_path: Path) -> None:
    model = PlantModel(seed=3, start=T0 - 60, step_s=1.0)
    clock = SimClock(
        T0 - 1,
        T1,
        {RESET_AT: lambda: model.inject("main-meter", "reset_counter", role="energy_import_kwh")},
    )
    polls = round((T1 - T0) / POLL_S) + 1
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "influx") as db:
        db.create_database("energy")
        influx = {"kind": "v1", "url": db.url, "database": "energy"}
        with CenterProcess(tmp_path / "centre", center_config(broker.port, influx)):
            async with ModbusSimulator(model, plant_units(), clock=clock.now) as sim:
                agent = Agent(
                    agent_site(tmp_path, sim.port, broker.port),
                    clock=clock.now,
                    poll_clock=clock,
                    install_signal_handlers=False,
                    flush_timeout_s=30.0,
                )
                run = asyncio.create_task(agent.run())

                def stored(device: str, role: str) -> int:
                    q = f"SELECT count(value) FROM sample WHERE device='{device}' AND role='{role}'"
                    return int(db.scalar(q, "energy") or 0)

                def all_stored() -> bool:
                    series = (
                        ("kiln1", "production_t"),
                        ("main-meter", "energy_import_kwh"),
                        ("pv-meter", "energy_import_kwh"),
                    )
                    return all(stored(d, r) == polls for d, r in series)

                try:
                    await asyncio.wait_for(clock.reached_last.wait(), 240)
                    await eventually(all_stored, 120, f"{polls} polls of each device in InfluxDB")
                finally:
                    agent.stop()
                    await asyncio.wait_for(run, 60)
        assert agent.polls >= polls * len(PLANT_LAYOUT)  # every device answered every slot
        where = "device='main-meter' AND role='energy_import_kwh'"
        first = db.scalar(f"SELECT first(value) FROM sample WHERE {where}", "energy")
        last = db.scalar(f"SELECT last(value) FROM sample WHERE {where}", "energy")
        assert first is not None and last is not None and float(last) < float(first)  # the replacement went through
        accounts = AccountsConfig.model_validate(unit_section(str(tmp_path / "accounts"), []))
        now = [dt.datetime(2026, 11, 2, tzinfo=ZONE).timestamp()]
        service = AccountsService(accounts, InfluxReader(InfluxConfig.model_validate(influx)), clock=lambda: now[0])
        while (
            now[0] < dt.datetime(2026, 11, 3, 0, 30, tzinfo=ZONE).timestamp()
        ):  # one round per simulated quarter through the next midnight: day closed
            now[0] += 900
            service.tick(now[0])
    ledger = Ledger(accounts.units[0], service.store)
    day = ledger.period("day", "2026-11-02")
    figures = ledger.figures(day)
    assert figures["provisional"] is False  # closed by the round after midnight
    got, want = account_items(figures), truth(model, T0, T1)
    errors = [
        f"{k}: account {got[k]:.4f} vs simulator {want[k]:.4f}"
        for k in want
        if got[k] != pytest.approx(want[k], rel=0.005, abs=1e-6)
    ]
    assert errors == []
    # the plant ran (not 0 == 0), PV produced at midday; the intake exports nothing in this hour (0 == 0 there)
    assert want["electricity.purchased"] > 1000 and want["raw_coal.quantity"] > 1 and want["pv.produced"] > 100
    # the day's upload record (what the province receives) carries the same quantities
    (body,) = service.store.db.execute("SELECT body FROM outbox WHERE kind='day' AND period='2026-11-02'").fetchone()
    sent = {i["carrier"]: i for i in json.loads(body)["items"]}
    assert sent["raw_coal"]["quantity"] == pytest.approx(want["raw_coal.quantity"], rel=0.005)
    assert sent["electricity"]["purchased"] == pytest.approx(want["electricity.purchased"], rel=0.005)
    assert sent["pv"]["produced"] == pytest.approx(want["pv.produced"], rel=0.005)
    service.store.close()
