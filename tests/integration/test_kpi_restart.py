"""The running agent keeps its KPI state over restarts (issue 13): a clean stop writes the snapshot, the next start
restores it (one log line), an unusable snapshot is moved aside (one log line) and the agent runs on. The agent
runs in-process against the Modbus simulator, spooling without a broker."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from agent.config.load import load_site, shipped_profile_dir
from agent.kpi.engine import KpiEngine
from agent.kpi.state import decode
from agent.model import Quality, Role, Sample
from agent.runtime.agent import Agent
from agent.runtime.parts import build_kpi_engine
from simulators.modbus_server import ModbusSimulator, SimUnit
from simulators.plant import PlantModel

METER = shipped_profile_dir() / "generic-3ph-meter.yaml"


def write_site(tmp_path: Path, port: int, windows: tuple[str, ...] = ("15m", "day")) -> Path:
    doc = {
        "site": "test-plant",
        "gateway": "gw1",
        "state_dir": str(tmp_path / "state"),
        "devices": [{"name": "kiln1-meter", "profile": "generic-3ph-meter", "host": "127.0.0.1", "port": port}],
        "kpi": {
            "publish_interval_s": 1,
            "windows": list(windows),
            "custom": [{"name": "kwh", "formula": 'total("kiln1-meter", "energy_import_kwh")', "unit": "kWh"}],
        },
    }
    path = tmp_path / "site.yaml"
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return path


async def run_for(site: Path, seconds: float) -> None:
    agent = Agent(site, install_signal_handlers=False)
    task = asyncio.create_task(agent.run())
    await asyncio.sleep(seconds)
    agent.stop()
    await asyncio.wait_for(task, 30)


@pytest.mark.long(seconds=6)  # an agent run, stopped, run again
async def test_the_kpi_state_is_saved_at_stop_restored_at_start_and_an_unusable_one_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = PlantModel(start=float(int(time.time())))
    async with ModbusSimulator(model, [SimUnit("kiln1-meter", METER, 1)]) as sim:
        site = write_site(tmp_path, sim.port)
        state = tmp_path / "state" / "kpi-state.json"
        with caplog.at_level(logging.INFO, logger="agent.runtime"):
            await run_for(site, 2.5)
            saved = decode(state.read_bytes())
            assert isinstance(saved, dict)
            [meter] = [c for k, c in saved["channels"].items() if k.startswith("kiln1-meter|")]
            assert meter["tracker"]["last"] is not None  # the counter reading the next start continues from
            assert "no saved state" in caplog.text

            caplog.clear()
            await run_for(site, 1.5)
            restored = [r.getMessage() for r in caplog.records if "kpi: state of" in r.getMessage()]
            assert len(restored) == 1 and "restored: 1 of 1 inputs" in restored[0]

            caplog.clear()
            state.write_bytes(b'{"format": "energy-agent-kpi-state", "version": 1, "channels": ')
            await run_for(site, 1.5)
            unusable = [r for r in caplog.records if "unusable" in r.getMessage()]
            assert len(unusable) == 1 and unusable[0].levelno == logging.WARNING
            assert len(list(state.parent.glob("kpi-state.json.unusable-*"))) == 1
            assert isinstance(decode(state.read_bytes()), dict)  # a fresh snapshot was written at this stop


def test_a_reload_that_changes_the_kpi_section_carries_the_running_windows_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP with a KPI section that gains a 1h window: the quarter hour that was running goes on from the same
    counter reading (15 min at 3600 kWh/h read every 2 s, the reload at 08:07:30: 900 kWh, coverage 1.0)."""
    t0 = 1_767_225_600.0  # 08:00 Asia/Shanghai
    now = [t0]
    old = build_kpi_engine(load_site(write_site(tmp_path, 1502)), lambda: now[0])
    assert old is not None

    def feed(engine: KpiEngine, a: int, b: int) -> None:
        for k in range(a, b + 1, 2):
            now[0] = t0 + k
            s = Sample("kiln1-meter", "e", 1000.0 + k, "kWh", Quality.GOOD, t0 + k, role=Role.ENERGY_IMPORT_KWH)
            engine.ingest([s])

    feed(old, 0, 450)
    with caplog.at_level(logging.INFO, logger="agent.runtime"):
        new = build_kpi_engine(load_site(write_site(tmp_path, 1502, ("15m", "1h", "day"))), lambda: now[0], None, old)
    assert new is not None
    assert "reload: kpi: state of" in caplog.text and "KPI config changed" in caplog.text
    feed(new, 452, 960)
    [q] = [v for v in new.evaluate(t0 + 960) if v.name == "kwh" and v.window == "15m" and v.final]
    assert q.value == pytest.approx(900.0) and q.coverage == pytest.approx(1.0)
