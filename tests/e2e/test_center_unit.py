"""The centre's systemd unit: notify + watchdog, bounded restarts, no restart on a bad config (which ``run`` itself
refuses with 78: RestartPreventExitStatus sees only the main process), limits, hardening score, and systemd's own
check of the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_deploy import MAX_EXPOSURE, exposure, systemd_verify, unit_sections

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "center" / "systemd" / "energy-center.service"

pytestmark = pytest.mark.e2e


def test_centre_unit_notifies_is_watched_and_restarts_are_bounded() -> None:
    sections = unit_sections(UNIT.read_text())
    unit, service = dict(sections["Unit"]), dict(sections["Service"])
    keys = [k for k, _ in sections["Service"]]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) >= 30
    # start limits belong in [Unit] (systemd ignores them in [Service]) and must bite with this RestartSec
    assert "StartLimitIntervalSec" not in keys and "StartLimitBurst" not in keys
    assert int(unit["StartLimitBurst"]) * int(service["RestartSec"]) < int(unit["StartLimitIntervalSec"])
    # a start that waits for the broker must not use up the start limit within its interval
    assert int(unit["StartLimitBurst"]) * int(service["TimeoutStartSec"]) > int(unit["StartLimitIntervalSec"])
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "78"
    assert "ExecStartPre" not in keys
    assert service["MemoryMax"] == "2G" and service["TasksMax"] == "64"
    assert exposure(UNIT) <= MAX_EXPOSURE


def test_run_refuses_a_bad_config_with_78_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "center.yaml"
    bad.write_text("influx:\n  database: energy\n  batch_pionts: 10\ndead_letter:\n  file: /tmp/x\n")
    done = subprocess.run(
        [sys.executable, "-m", "agent.center.cli", "run", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78
    assert f"{bad}:3:3: influx.batch_pionts: unknown key 'batch_pionts' (did you mean 'batch_points'?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_systemd_verifies_the_centre_unit(tmp_path: Path) -> None:
    done = systemd_verify(UNIT, "/opt/energy-center/bin/energy-center", "energy-center", tmp_path)
    assert done.returncode == 0 and "energy-center.service" not in done.stderr, done.stderr
