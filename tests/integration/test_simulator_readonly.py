"""The suite-wide read-only check catches writes served in this process and in simulator child processes, and
``python -m simulators modbus`` serves the whole plant with a site file the agent can load."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from agent.config.site import SiteConfig
from simulators import registry
from simulators.groundtruth import GroundTruth
from simulators.layout import PLANT_LAYOUT, plant_units
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel, SteppedClock
from tests import conftest
from tests.simfixtures import read_only_violations, simulator_process


class _Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str, **_: Any) -> None:
        self.lines.append(line)


def _finish_session() -> tuple[Any, _Reporter]:
    """Run the conftest's session-finish hook on a stand-in session and return it."""
    reporter = _Reporter()
    session: Any = SimpleNamespace(
        exitstatus=pytest.ExitCode.OK,
        config=SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: reporter)),
    )
    conftest.pytest_sessionfinish(session, 0)
    return session, reporter


async def test_the_session_hook_fails_the_run_when_a_simulator_served_a_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(registry, "SERVED", Counter())  # a private registry: the real session stays clean
    monkeypatch.setenv(registry.SERVED_FILE_ENV, str(tmp_path / "writes.txt"))
    session, reporter = _finish_session()
    assert session.exitstatus == pytest.ExitCode.OK and reporter.lines == []

    model = PlantModel()
    async with ModbusSimulator(model, plant_units(["pump1"]), clock=SteppedClock(model.start)) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
        await client.connect()
        try:
            rr = await client.read_holding_registers(0, count=2, device_id=11)
            assert not rr.isError()
            assert read_only_violations(str(tmp_path / "writes.txt")) is None
            await client.write_register(0, 1, device_id=11)
        finally:
            client.close()
    session, reporter = _finish_session()
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert reporter.lines == [
        "read-only check failed: simulators served write requests (function code 6 x1); the agent must never write"
    ]


@pytest.mark.e2e  # the simulator as a process
async def test_cli_serves_the_plant_writes_a_loadable_site_and_reports_writes_from_its_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    writes = tmp_path / "writes.txt"
    monkeypatch.setenv(registry.SERVED_FILE_ENV, str(writes))  # inherited by the child process
    with simulator_process(tmp_path, speed=10.0) as proc:
        site = SiteConfig.model_validate(_load_yaml(tmp_path / "site.yaml"))
        assert [d.name for d in site.devices] == list(PLANT_LAYOUT)
        deadline = time.monotonic() + 5.0  # the port opens a moment before the map is printed
        while f"main-meter -> ({proc.port}, 1, generic-3ph-meter)" not in proc.log():
            assert time.monotonic() < deadline, proc.log()
            await asyncio.sleep(0.02)
        client = AsyncModbusTcpClient("127.0.0.1", port=proc.port, timeout=2, retries=0)
        await client.connect()
        try:
            rr = await client.read_holding_registers(0, count=2, device_id=PLANT_LAYOUT["kiln1"][1])
            assert not rr.isError()
            await client.write_coil(0, True, device_id=PLANT_LAYOUT["pump1"][1])
        finally:
            client.close()
    assert registry.writes_in_file(writes) == {5: 1}
    message = read_only_violations(str(writes))
    assert message is not None and "function code 5 x1" in message
    truth = GroundTruth.load(tmp_path / "ground_truth.jsonl")
    assert {r["device"] for r in truth.records} == set(PLANT_LAYOUT)


def _load_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text())
