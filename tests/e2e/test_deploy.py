"""Gateway deployment: the systemd unit's hardening score, and install/uninstall into a scratch root."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "energy-agent.service"
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.e2e


def exposure(unit: Path) -> float:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    return float(match.group(1))


def with_dropin(tmp_path: Path, dropin: str) -> Path:
    """The unit as systemd sees it with a drop-in: the drop-in's [Service] lines added to the unit's."""
    text = UNIT.read_text()
    head, tail = text.split("[Install]")
    service_lines = "\n".join(line for line in dropin.splitlines() if line and not line.startswith(("[", "#")))
    unit = tmp_path / "energy-agent.service"
    unit.write_text(f"{head}{service_lines}\n\n[Install]{tail}")
    return unit


def test_shipped_unit_exposure_is_at_most_2() -> None:
    assert exposure(UNIT) <= MAX_EXPOSURE


def test_centre_unit_exposure_is_at_most_2() -> None:
    assert exposure(REPO / "deploy" / "center" / "systemd" / "energy-center.service") <= MAX_EXPOSURE


def test_unit_keeps_the_promises_of_the_readme() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "RestartPreventExitStatus=78",
        "DynamicUser=yes",
        "StateDirectory=energy-agent",
        "ConfigurationDirectory=energy-agent",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "DevicePolicy=closed",
    ):
        assert line in text, line


def test_install_grants_the_site_serial_ports_refuses_bad_sites_and_uninstall_keeps_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    site = REPO / "deploy" / "site.example.yaml"
    subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--site", str(site)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (root / "opt/energy-agent/venv/bin/energy-agent").exists()
    assert (root / "opt/energy-agent/device_profiles/chint-dtsu666.yaml").exists()
    installed = root / "etc/energy-agent/site.yaml"
    assert installed.read_text() == site.read_text()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "etc/energy-agent/credentials").stat().st_mode) == 0o700
    dropin = (root / "etc/systemd/system/energy-agent.service.d/serial.conf").read_text()
    assert "DeviceAllow=/dev/ttyUSB0 rw" in dropin and dropin.count("DeviceAllow=") == 1
    assert "SupplementaryGroups=dialout" in dropin
    assert exposure(with_dropin(tmp_path, dropin)) <= MAX_EXPOSURE
    # The installed agent runs from its venv and validates the installed site with the installed profiles.
    ok = subprocess.run(
        [str(root / "opt/energy-agent/venv/bin/energy-agent"), "validate", "--quiet", str(installed)],
        env={"ENERGY_AGENT_PROFILES": str(root / "opt/energy-agent/device_profiles")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr

    # A second install with an invalid site is refused (exit 78) and leaves the installed site as it was.
    bad = tmp_path / "bad-site.yaml"
    bad.write_text("site: x\ngateway: y\ndevices:\n  - name: m\n    profile: no-such-profile\n    host: h\n")
    refused = subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--site", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert refused.returncode == 78, refused.stderr
    assert "no-such-profile" in refused.stderr
    assert installed.read_text() == site.read_text()

    subprocess.run(["bash", str(REPO / "deploy" / "uninstall.sh"), "--root", str(root)], check=True, timeout=60)
    assert not (root / "opt/energy-agent").exists()
    assert not (root / "etc/systemd/system/energy-agent.service").exists()
    assert installed.exists(), "uninstall without --purge keeps the site file"
    subprocess.run(["bash", str(REPO / "deploy" / "uninstall.sh"), "--root", str(root), "--purge"], check=True)
    assert not (root / "etc/energy-agent").exists()
