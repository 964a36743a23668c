"""One compile step for validate, plan, probe, run and reload: what validate refuses, run refuses before any socket
or READY (exit 78, no traceback), a reload keeps the running config, and the runtime runs the compiled plans."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.config.load import ENV_PROFILES
from agent.errors import ConfigError
from agent.runtime.agent import Agent
from agent.runtime.compile import compile_site
from agent.runtime.parts import build_sources
from agent.sources.modbus.source import ModbusSource

REPO = Path(__file__).resolve().parents[2]
PROFILE = """\
profile: acme-pm
address_base: 0
points:
  - {name: voltage, kind: holding_register, address: 0, type: uint16, unit: V}
  - {name: energy, kind: holding_register, address: 10, type: float32, unit: kWh}
"""
SITE = """\
site: plant
gateway: gw-1
profile_dirs: [profiles]
state_dir: state
devices:
  - name: kiln1-meter
    profile: acme-pm
    host: 127.0.0.1
    port: 1
    max_registers_per_request: {limit}
"""
REFUSAL = (
    "site.yaml:10:32: devices[0].max_registers_per_request: 1 is too small for profile acme-pm: point 'energy' "
    "(float32, profiles/acme-pm.yaml:5:5) spans 2 registers and a value cannot be split over two requests; set at "
    "least 2, or remove the setting"
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "acme-pm.yaml").write_text(PROFILE)
    (tmp_path / "site.yaml").write_text(SITE.format(limit=2))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "empty"))
    return Path("site.yaml")


def test_validate_and_compile_refuse_a_float32_over_one_register_requests(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site.write_text(SITE.format(limit=1))
    with pytest.raises(ConfigError) as caught:
        compile_site(site)
    assert [str(i) for i in caught.value.issues] == [REFUSAL]
    assert main(["validate", str(site)]) == 78
    assert capsys.readouterr().err.splitlines()[0] == REFUSAL
    assert main(["plan", str(site)]) == 78


def test_run_refuses_it_with_78_before_opening_anything(site: Path) -> None:
    # Before the compile step, `run` sent READY, then the read plan failed in a task: traceback, exit 1.
    site.write_text(SITE.format(limit=1))
    done = subprocess.run(
        [sys.executable, "-m", "agent", "run", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert REFUSAL in done.stderr
    assert not Path("state").exists()  # no spool, no lock: nothing was started


def test_a_reload_to_a_site_that_does_not_compile_keeps_the_running_config(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(site, install_signal_handlers=False)
    running = agent.compiled
    site.write_text(SITE.format(limit=1))
    with caplog.at_level(logging.ERROR, logger="agent.runtime"):
        agent._apply_reload()
    assert agent.compiled is running
    assert f"reload: {REFUSAL}" in caplog.messages


def test_the_runtime_polls_with_the_compiled_plans(site: Path) -> None:
    compiled = compile_site(site)
    (source,) = build_sources(compiled)
    assert isinstance(source, ModbusSource)
    (poller,) = source.pollers
    assert poller.plan is compiled.modbus_plans["kiln1-meter"]
    assert [r.count for r in poller.plan.requests] == [1, 2]  # the limit of 2 registers, as compiled


def test_config_does_not_reach_into_sources_or_kpi(site: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from agent.config.load import load_site; load_site(Path('site.yaml'));"
        "print(sorted(m for m in sys.modules if m.startswith(('agent.sources', 'agent.kpi', 'agent.runtime'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
