"""Gateway deployment: the systemd unit's hardening score, and install/uninstall into a scratch root."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "energy-agent.service"
MAX_EXPOSURE = 2.0
# pip's bytecode step off for the installs here (PIP_NO_COMPILE=0 is pip's inverted spelling of --no-compile): it is
# pip's own work, not install.sh's, and cost 10 of the 13 CPU-seconds of each install; a gateway's install keeps it.
INSTALL_ENV = os.environ | {"PIP_NO_COMPILE": "0"}

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


def systemd_verify(unit: Path, installed: str, program: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of a copy of the unit whose ``installed`` program path (which does not exist here)
    is replaced by ``program`` next to this Python."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(installed, str(Path(sys.executable).with_name(program))))
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True, check=False
    )


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


def unit_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """The unit's directives per section, in order (a key may repeat, as ExecReload does)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current.append((key, value))
    return sections


def test_unit_restarts_are_bounded_and_a_bad_site_is_not_restarted() -> None:
    sections = unit_sections(UNIT.read_text())
    unit, service = dict(sections["Unit"]), sections["Service"]
    keys = [k for k, _ in service]
    # start limits belong in [Unit] (systemd ignores them in [Service]), and must bite with this RestartSec:
    interval, burst = int(unit["StartLimitIntervalSec"]), int(unit["StartLimitBurst"])
    assert burst * int(dict(service)["RestartSec"]) < interval
    assert "StartLimitIntervalSec" not in keys and "StartLimitBurst" not in keys
    # RestartPreventExitStatus covers the main process only: no ExecStartPre may exit 78 and be restarted
    assert dict(service)["RestartPreventExitStatus"] == "78" and dict(service)["Restart"] == "on-failure"
    assert "ExecStartPre" not in keys
    assert next(v for k, v in service if k == "ExecReload").endswith("validate --quiet /etc/energy-agent/site.yaml")
    assert dict(service)["MemoryMax"] == "512M" and dict(service)["TasksMax"] == "64"
    assert dict(service)["SyslogLevelPrefix"] == "yes"


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    done = systemd_verify(UNIT, "/opt/energy-agent/venv/bin/energy-agent", "energy-agent", tmp_path)
    assert done.returncode == 0 and "energy-agent.service" not in done.stderr, done.stderr


@pytest.mark.long(seconds=45)  # two installs into a fresh virtualenv
@pytest.mark.timeout(900)  # its own steps are bounded (600 s each); on a loaded machine installing takes minutes
def test_install_grants_the_site_serial_ports_refuses_bad_sites_and_uninstall_keeps_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    site = REPO / "deploy" / "site.example.yaml"
    credentials = root / "etc/energy-agent/credentials"  # the secrets the example names, put there beforehand
    credentials.mkdir(parents=True)
    for name in ("mqtt-password", "opcua-kiln1-password", "opcua-agent-key.pem"):
        (credentials / name).write_text("secret\n")
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--site", str(site)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=INSTALL_ENV,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
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
    # Every file in credentials/ becomes a systemd credential of the same name (the example's OPC UA password and
    # key, beside the MQTT password).
    loaded = (root / "etc/systemd/system/energy-agent.service.d/credentials.conf").read_text().splitlines()
    assert [line for line in loaded if line.startswith("LoadCredential=")] == [
        f"LoadCredential={name}:/etc/energy-agent/credentials/{name}"
        for name in ("mqtt-password", "opcua-agent-key.pem", "opcua-kiln1-password")
    ]
    # The README's steps 3-5 with the installed command, without the unit's environment: it finds the profile
    # library installed beside its venv. The example (OPC UA device included) validates without a warning.
    cli = str(root / "opt/energy-agent/venv/bin/energy-agent")
    bare = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    ok = subprocess.run([cli, "validate", str(installed)], env=bare, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert "kiln1-plc: opcua opc.tcp://192.0.2.30:4840" in ok.stdout
    # Editors find the JSON Schemas beside the venv (`energy-agent schema --path`), offering the shipped profiles.
    where = subprocess.run([cli, "schema", "--path"], env=bare, capture_output=True, text=True, check=False)
    assert where.stdout.strip() == str((root / "opt/energy-agent/schemas").resolve()), where.stderr
    schema = json.loads((root / "opt/energy-agent/schemas/site.schema.json").read_text())
    assert "chint-dtsu666" in schema["$defs"]["ModbusDeviceConfig"]["properties"]["profile"]["examples"]
    plan = subprocess.run([cli, "plan", str(installed)], env=bare, capture_output=True, text=True, check=False)
    assert plan.returncode == 0, plan.stderr
    assert "kiln1-meter (profile chint-dtsu666, unit 1, bus rs485-1): 4 requests per poll" in plan.stdout
    port = free_port()
    sim_site = tmp_path / "sim" / "site.yaml"
    argv = [sys.executable, "-m", "simulators", "modbus", "--port", str(port), "--write-site", str(sim_site)]
    with ServerProcess("plant-sim", argv, tmp_path / "sim", port):
        probe = subprocess.run(
            [cli, "probe", str(sim_site), "--device", "kiln1-meter"], env=bare, capture_output=True, text=True
        )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.startswith(f"kiln1-meter (127.0.0.1:{port}, unit 2): answered")
    assert "active_power" in probe.stdout and " bad " not in probe.stdout

    # A second install with an invalid site is refused (exit 78) and leaves the installed site as it was.
    bad = tmp_path / "bad-site.yaml"
    bad.write_text("site: x\ngateway: y\ndevices:\n  - name: m\n    profile: no-such-profile\n    host: h\n")
    refused = subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--site", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=INSTALL_ENV,
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


@pytest.mark.parametrize("script", ["install.sh", "uninstall.sh"])
def test_scripts_explain_their_options_and_refuse_a_missing_value(script: str, tmp_path: Path) -> None:
    path = str(REPO / "deploy" / script)
    helped = subprocess.run(["bash", path, "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and helped.stderr == "", helped.stderr
    assert "--root DIR" in helped.stdout and "-h, --help" in helped.stdout and "set -euo" not in helped.stdout
    option = "--site" if script == "install.sh" else "--root"
    for argv in ([option], [option, "--no-start" if script == "install.sh" else "--purge"]):
        refused = subprocess.run(["bash", path, *argv], capture_output=True, text=True, check=False, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr == f"{script}: {option} needs a value (see {script} --help)\n"
    unknown = subprocess.run(["bash", path, "--frobnicate"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "unknown option --frobnicate" in unknown.stderr
    assert list(tmp_path.iterdir()) == [], "a refused call installs or removes nothing"
