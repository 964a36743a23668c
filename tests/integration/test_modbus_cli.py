"""``energy-agent plan`` and ``energy-agent probe`` against the whole simulated plant (``python -m simulators modbus``
as a separate process on a free loopback port, stopped by PID), through the CLI's entry point."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from agent.config.load import load_site
from agent.config.site import ModbusDeviceConfig
from agent.sources.modbus.plan import build_read_plan
from tests.servers.process import ServerProcess, free_port


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
    assert "wide.yaml:5:5: points[1]: sn spans 20 registers, more than one request may read (10" in err
