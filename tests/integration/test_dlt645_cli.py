"""``validate``, ``plan``, ``probe`` (text, ``--json``, ``--watch``, ``--read-address``), ``list profiles`` and
``reference dlt645`` for DL/T 645 meters, against ``python -m simulators dlt645`` as a separate process on a free
loopback port (stopped by PID), through the CLI's entry point."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from tests.servers.process import ServerProcess, free_port

MAIN, PV, ONLY = "000000000001", "000000000009", "000012345678"


def _site(path: Path, port: int, devices: str) -> Path:
    path.write_text(
        "site: s\ngateway: g\nbuses:\n"
        f"  - {{name: ss, transport: tcp_gateway, host: 127.0.0.1, port: {port}, framing: rtu}}\n"
        + (f"devices:\n{devices}" if devices else "devices: []\n"),
        encoding="utf-8",
    )
    return path


def _meter(name: str, address: str, profile: str = "dlt645-generic-2007-3ph-meter", extra: str = "") -> str:
    return f"  - {{name: {name}, protocol: dlt645, profile: {profile}, bus: ss, address: '{address}'{extra}}}\n"


@pytest.fixture(scope="module")
def meters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("meters")
    port = free_port()
    argv = [sys.executable, "-m", "simulators", "dlt645", "--port", str(port)]
    argv += ["--meter", f"main-meter={MAIN}:ct=200:unsupported=02-80-00-02", "--meter", f"pv-meter={PV}:1997:ct=10"]
    with ServerProcess("dlt645-sim", argv, workdir, port):
        yield port


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One meter on its line, for reading its address."""
    workdir = tmp_path_factory.mktemp("alone")
    port = free_port()
    argv = [sys.executable, "-m", "simulators", "dlt645", "--port", str(port), "--meter", f"kiln1-meter={ONLY}"]
    with ServerProcess("dlt645-alone", argv, workdir, port):
        yield port


@pytest.mark.e2e
def test_validate_and_plan_describe_the_meters(meters: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(
        tmp_path / "site.yaml",
        meters,
        _meter("m1", MAIN, extra=", ct_ratio: 200") + _meter("pv", PV, "dlt645-generic-1997-meter"),
    )
    assert main(["validate", str(site)]) == 0
    out = capsys.readouterr().out
    assert "m1: dlt645-2007 profile dlt645-generic-2007-3ph-meter, gateway ss" in out
    assert "address 000000000001, 17 points, 16 requests, CT 200 PT 1, every 1 s" in out
    assert main(["plan", str(site)]) == 0
    out = capsys.readouterr().out
    assert "  0x01 di 9010        format XXXXXX.XX" in out
    assert out.splitlines()[-1] == "total: 27 requests per poll for 2 devices (theoretical minimum 27)"


@pytest.mark.e2e
def test_probe_reads_both_editions_and_names_an_unsupported_identifier(
    meters: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(
        tmp_path / "site.yaml",
        meters,
        _meter("m1", MAIN, extra=", ct_ratio: 200") + _meter("pv", PV, "dlt645-generic-1997-meter"),
    )
    assert main(["probe", str(site)]) == 3  # frequency is not supported by this meter
    out = capsys.readouterr().out
    assert "m1 (127.0.0.1:" in out and "DL/T 645-2007 address 000000000001): answered, 1 of 17 points bad" in out
    assert "error: no such data item reading 02-80-00-02 (address 000000000001)" in out
    assert "hint: the meter does not have this DL/T 645 data identifier" in out
    assert "pv (127.0.0.1:" in out and "DL/T 645-1997 address 000000000009): answered," in out
    assert main(["probe", str(site), "--device", "pv", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["point"] for o in lines][:2] == ["energy_import", "energy_export"]
    assert all(o["quality"] == "good" for o in lines)
    assert main(["probe", str(site), "--device", "pv", "--watch", "--count", "2", "--interval", "0.2"]) == 0
    assert capsys.readouterr().out.count("pv (127.0.0.1:") == 2


@pytest.mark.e2e
def test_probe_hints_at_a_wrong_address_and_at_a_1997_meter_addressed_as_2007(
    meters: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = _meter("wrong", "000000000077", extra=", timeout_ms: 200") + _meter("old", PV, extra=", timeout_ms: 200")
    site = _site(tmp_path / "site.yaml", meters, devices)
    assert main(["probe", str(site)]) == 1
    out = capsys.readouterr().out
    wrong, old = out.split("\nold (")
    assert "FAILED (no reply)" in wrong and "hint: no reply from the meter: check the address" in wrong
    assert "answers DL/T 645-1997 frames" not in wrong
    assert "hint: this meter answers DL/T 645-1997 frames, not 2007: set version: '1997'" in old


@pytest.mark.e2e
def test_probe_reads_the_address_of_the_one_meter_on_a_line(
    alone: int, meters: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(tmp_path / "site.yaml", alone, "")
    assert main(["probe", str(site), "--read-address", "ss"]) == 0
    out = capsys.readouterr().out
    assert f"the meter on this line answers as {ONLY}" in out and f"address: '{ONLY}'" in out
    assert main(["probe", str(site), "--read-address", "ss", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"bus": "ss", "address": ONLY}
    two = _site(tmp_path / "two.yaml", meters, "")  # two meters on the line: nobody may answer a broadcast
    assert main(["probe", str(two), "--read-address", "ss"]) == 1
    assert "only one meter may be on the line" in capsys.readouterr().out


def test_list_profiles_and_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "profiles"]) == 0
    out = capsys.readouterr().out
    assert "dlt645-generic-2007-3ph-meter" in out and "energy_meter (dlt645)" in out
    assert main(["reference", "dlt645"]) == 0
    out = capsys.readouterr().out
    assert "| `00-01-00-00` | energy_forward_active_total | `XXXXXX.XX` | kWh |" in out
    assert "| `B611` | voltage_a | `XXX` | V |" in out
    assert out == Path("docs/reference/dlt645.md").read_text(encoding="utf-8"), "run energy-agent reference dlt645"
