"""``energy-agent plan`` and ``energy-agent probe`` against the whole simulated plant (``python -m simulators modbus``
as a separate process on a free loopback port, stopped by PID), through the CLI's entry point."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest import CaptureFixture

from agent.cli import main
from agent.config.load import load_site
from agent.config.site import ModbusDeviceConfig
from agent.sources.modbus.plan import build_read_plan
from tests.servers.process import ServerProcess, ctrl_c_reaches_it, free_port

pytestmark = pytest.mark.e2e  # starts the plant simulator and the CLI as processes


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    workdir = tmp_path_factory.mktemp("plant")
    port = free_port()
    site = workdir / "site.yaml"
    argv = [sys.executable, "-m", "simulators", "modbus", "--port", str(port), "--write-site", str(site)]
    argv += ["--silent-unit", "11"]  # make one device silent, to see probe's exit code 1
    with ServerProcess("plant-sim", argv, workdir, port):
        yield site


def silent_device(site: Path) -> str:
    loaded = load_site(site)
    return next(d.name for d in loaded.site.devices if isinstance(d, ModbusDeviceConfig) and d.unit_id == 11)


def test_plan_prints_requests_and_the_minimum_for_every_device(plant: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(plant)]) == 0
    out = capsys.readouterr().out.splitlines()
    loaded = load_site(plant)
    devices = [d for d in loaded.site.devices if isinstance(d, ModbusDeviceConfig)]
    total = sum(len(build_read_plan(loaded.profiles[d.profile], d).requests) for d in devices)
    assert out[-1] == f"total: {total} requests per poll for {len(devices)} devices (theoretical minimum {total})"
    headers = [line for line in out if not line.startswith(" ") and not line.startswith("total")]
    assert len(headers) == len(devices)
    assert all(line.endswith(")") and "requests per poll (minimum" in line for line in headers)
    assert main(["plan", str(plant), "--device", "nope"]) == 2


def test_probe_json_gives_every_point_with_raw_registers(plant: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(plant), "--device", "kiln1-meter", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    loaded = load_site(plant)
    dev = next(d for d in loaded.site.devices if d.name == "kiln1-meter")
    assert isinstance(dev, ModbusDeviceConfig)
    assert [o["point"] for o in lines] == [p.name for p in loaded.profiles[dev.profile].points]
    for o in lines:
        assert o["device"] == "kiln1-meter" and o["quality"] == "good" and "reason" not in o
        assert set(o) >= {"value", "unit", "ts", "raw"}
    power = next(o for o in lines if o["point"] == "active_power")
    assert len(power["raw"].split()) == 2 and power["value"] > 0


def test_probe_orders_and_exit_code_when_a_device_is_silent(plant: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = silent_device(plant)
    assert main(["probe", str(plant), "--device", "kiln1-meter", "--device", silent, "--orders"]) == 1
    out = capsys.readouterr().out
    assert f"{silent} (" in out and "FAILED" in out
    assert "orders: CDAB=" in out  # the meter's float32 points are word-swapped; CDAB ranks first
    assert main(["probe", str(plant), "--device", "nope"]) == 2


def test_bad_config_exits_78(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: x\ngateway: g\ndevices:\n  - {name: m, profile: no-such-profile, host: 127.0.0.1}\n")
    assert main(["plan", str(site)]) == 78
    assert main(["probe", str(site)]) == 78


def test_a_point_no_request_can_read_is_reported_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "wide.yaml").write_text(
        "profile: wide\naddress_base: 1\npoints:\n"
        "  - {name: a, kind: holding_register, address: 1, type: uint16}\n"
        "  - {name: sn, kind: holding_register, address: 10, type: string, length: 20}\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: x\ngateway: g\nprofile_dirs: [p]\n"
        "devices:\n  - {name: m, profile: wide, host: 127.0.0.1, max_registers_per_request: 10}\n"
    )
    assert main(["plan", str(site)]) == 78
    err = capsys.readouterr().err
    # the device's setting is what to fix (the profile suits other devices); the message says where the point is
    assert "site.yaml:5:74: devices[0].max_registers_per_request: 10 is too small for profile wide: point 'sn'" in err
    assert "wide.yaml:5:5) spans 20 registers" in err


def sim_port(site: Path) -> int:
    port = getattr(load_site(site).site.buses[0], "port", None)
    assert isinstance(port, int)
    return port


def probe_site(tmp_path: Path, port: int, points: list[str], unit_id: int = 2) -> Path:
    """A site polling the plant simulator's unit ``unit_id`` with a profile of these point lines."""
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / "trial.yaml").write_text(
        "profile: trial\naddress_base: 0\nbyte_order: CDAB\npoints:\n" + "".join(f"  - {p}\n" for p in points)
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: x\ngateway: g\nprofile_dirs: [p]\n"
        f"devices:\n  - {{name: m, profile: trial, host: 127.0.0.1, port: {port}, unit_id: {unit_id}}}\n"
    )
    return site


VOLTAGE = "{name: voltage_l1_v, kind: input_register, address: 0, type: float32, unit: V}"
NOWHERE = "{name: ghost, kind: input_register, address: 9000, type: float32, unit: V}"


def test_probe_exits_1_when_no_point_can_be_read_and_says_why_once(plant: Path, tmp_path: Path) -> None:
    site = probe_site(tmp_path, sim_port(plant), [NOWHERE])
    done = subprocess.run(
        [sys.executable, "-m", "agent", "probe", str(site)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    both = done.stdout + done.stderr
    assert both.count("ILLEGAL DATA ADDRESS") == 1, both  # one error line, not per point and in the log as well
    assert "m (127.0.0.1:" in done.stdout and "answered, but no point could be read" in done.stdout
    assert "  hint: the device has no register there: check the point's address and the profile's address_base" in both
    assert done.stderr == ""


def test_probe_exits_3_when_some_points_are_bad(plant: Path, tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    site = probe_site(tmp_path, sim_port(plant), [VOLTAGE, NOWHERE])
    assert main(["probe", str(site)]) == 3
    out = capsys.readouterr().out
    assert "answered, 1 of 2 points bad" in out and out.count("ILLEGAL DATA ADDRESS") == 1
    ghost = next(line for line in out.splitlines() if line.startswith("  ghost"))
    assert ghost.split() == ["ghost", "-", "V", "bad"]  # the error line above says why
    assert main(["probe", str(site), "--json"]) == 3


def test_probe_hints_at_unit_id_when_the_gateway_finds_no_device(
    plant: Path, tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    site = probe_site(tmp_path, sim_port(plant), [VOLTAGE], unit_id=42)
    assert main(["probe", str(site)]) == 1
    out = capsys.readouterr().out
    assert out.count("GATEWAY TARGET DEVICE FAILED TO RESPOND") == 1
    assert "hint: the gateway is reachable but the device behind it does not answer: check unit_id" in out


def test_probe_hints_at_host_and_port_when_nothing_listens(tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    site = probe_site(tmp_path, free_port(), [VOLTAGE])
    assert main(["probe", str(site)]) == 1
    out = capsys.readouterr().out
    assert "error: cannot connect: connection refused" in out
    assert "hint: nothing accepts the connection: check host and port" in out


def test_probe_orders_ranks_an_energy_counter_by_continuity(plant: Path, capsys: CaptureFixture[str]) -> None:
    """The meter's energy counters are uint32 ABCD; by magnitude CDAB ranked first, by continuity ABCD does."""
    assert main(["probe", str(plant), "--device", "kiln1-meter", "--orders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    energy = lines[next(i for i, line in enumerate(lines) if line.startswith("  energy_import")) + 1]
    assert energy.strip().startswith("orders: ABCD="), energy
    assert energy.endswith("(now ABCD; ranked by continuity between two polls)"), energy
    power = lines[next(i for i, line in enumerate(lines) if line.startswith("  active_power")) + 1]
    assert power.strip().startswith("orders: CDAB=") and power.endswith("(now CDAB)"), power


def test_probe_watch_prints_frames_without_a_terminal(plant: Path) -> None:
    argv = [sys.executable, "-m", "agent", "probe", str(plant), "--device", "kiln1-meter", "--watch"]
    done = subprocess.run([*argv, "--count", "3", "--interval", "0.2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    frames = [f for f in done.stdout.split("\n\n") if f.strip()]
    assert len(frames) == 3 and "\x1b[" not in done.stdout
    for frame in frames:
        head, device, *points = frame.splitlines()
        assert head.startswith(f"{plant} at ") and head.endswith("every 0.2 s (Ctrl-C ends)")
        assert device.startswith("kiln1-meter (") and len(points) == 18


def test_probe_watch_ends_on_ctrl_c(plant: Path) -> None:
    argv = [sys.executable, "-m", "agent", "probe", str(plant), "--device", "kiln1-meter", "--watch"]
    with subprocess.Popen(
        [*argv, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,  # resets one signal before exec
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.readline().startswith(f"{plant} at ")  # the first frame is coming
            assert proc.stdout.readline().startswith("kiln1-meter (")
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
            err = proc.stderr.read()
        finally:
            proc.kill()
    assert proc.returncode == 0 and err == "", err  # no traceback


def test_probe_watch_redraws_in_place_on_a_terminal(plant: Path) -> None:
    primary, secondary = pty.openpty()
    argv = [sys.executable, "-m", "agent", "probe", str(plant), "--device", "kiln1-meter", "--watch"]
    with subprocess.Popen(
        [*argv, "--count", "2", "--interval", "0.2"], stdout=secondary, stderr=subprocess.PIPE
    ) as proc:
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        proc.wait(timeout=20)
        os.close(primary)
    assert proc.returncode == 0
    frames = seen.split(b"\x1b[H\x1b[2J")  # cursor home, clear screen before each frame
    assert frames[0] == b"" and len(frames) == 3 and all(b"kiln1-meter (" in f for f in frames[1:])


def test_scan_units_lists_the_unit_ids_that_answer_and_the_configured_one_that_does_not(
    plant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: ``probe --scan-units`` on a gateway lists which unit ids answer, with read-only requests only (the
    suite's read-only check sees every function code the simulator served). Units 1-10 answer, 11 is silent."""
    assert main(["probe", str(plant), "--scan-units", "plant-gateway", "--units", "1-13", "--timeout-ms", "150"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("scanning unit ids 1..13 on plant-gateway (127.0.0.1:")
    assert "one read of holding register 0 each (read-only)" in out[0]
    answered = [int(line.split()[1]) for line in out if line.startswith("  unit ")]
    assert answered == list(range(1, 11))
    assert "10 of 13 unit ids answer: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10" in out
    assert out[-1] == (
        f"  {silent_device(plant)} (unit_id 11) did not answer: check its unit_id, wiring and the bus settings"
    )
    assert main(["probe", str(plant), "--scan-units", "nope"]) == 2
    assert "no bus, gateway or Modbus TCP device of that name (buses: plant-gateway" in capsys.readouterr().err
    assert main(["probe", str(plant), "--scan-units", "plant-gateway", "--units", "5-300"]) == 2
