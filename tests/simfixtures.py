"""Fixtures and helpers for tests that need the simulated plant (loaded as a plugin by tests/conftest.py).

Fixtures (function-scoped):
    plant_model      PlantModel(seed=1) at its default start (2026-01-01 00:00 UTC)
    plant_clock      SteppedClock at the model's start: ``plant_clock.advance(60)`` moves model time one minute
    plant_sim        the whole plant on one Modbus TCP port (unit ids per simulators.layout.PLANT_LAYOUT),
                     refreshed from ``plant_clock``; ``plant_sim.port``, ``plant_sim.model``, ``plant_sim.stats``

Helpers:
    simulator_process(workdir, ...)   ``python -m simulators modbus`` as a ServerProcess (site file and ground
                                      truth written into workdir); for e2e tests with the agent as a process
    read_only_violations()            the suite-wide read-only check used by tests/conftest.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators import registry
from simulators.layout import plant_units
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel, SteppedClock
from tests.servers.process import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def plant_model() -> PlantModel:
    return PlantModel(seed=1)


@pytest.fixture
def plant_clock(plant_model: PlantModel) -> SteppedClock:
    return SteppedClock(plant_model.start)


@pytest.fixture
async def plant_sim(plant_model: PlantModel, plant_clock: SteppedClock) -> AsyncIterator[ModbusSimulator]:
    async with ModbusSimulator(plant_model, plant_units(), "tcp", clock=plant_clock) as sim:
        yield sim


def simulator_process(
    workdir: Path,
    port: int | None = None,
    speed: float = 1.0,
    transport: str = "tcp",
    devices: list[str] | None = None,
    extra_args: list[str] | None = None,
) -> ServerProcess:
    """The plant simulator as a process (not started). It writes ``workdir/site.yaml`` and
    ``workdir/ground_truth.jsonl``; the map of devices is in its log (``ServerProcess.log()``)."""
    port = port or free_port()
    argv = [
        sys.executable,
        "-m",
        "simulators",
        "modbus",
        "--port",
        str(port),
        "--transport",
        transport,
        "--speed",
        str(speed),
        "--write-site",
        str(workdir / "site.yaml"),
        "--ground-truth",
        str(workdir / "ground_truth.jsonl"),
    ]
    if devices:
        argv += ["--devices", *devices]
    argv += extra_args or []
    env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return ServerProcess("modbus-sim", argv, workdir, port, env=env)


def read_only_violations(writes_file: str | None = None) -> str | None:
    """A message naming every write function code a simulator served (in this process or, via
    ``writes_file``, in child processes), or None when the agent stayed read-only."""
    found = dict(registry.writes_served())
    if writes_file:
        for fc, n in registry.writes_in_file(writes_file, exclude_pid=os.getpid()).items():
            found[fc] = found.get(fc, 0) + n
    if not found:
        return None
    listed = ", ".join(
        f"DL/T 645 control code 0x{fc - registry.DLT645_BASE:02X} x{n}"
        if fc >= registry.DLT645_BASE
        else f"function code {fc} x{n}"
        for fc, n in sorted(found.items())
    )
    return f"read-only check failed: simulators served write requests ({listed}); the agent must never write"
