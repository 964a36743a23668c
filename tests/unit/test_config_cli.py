"""``energy-agent validate`` exit codes and output, and ``energy-agent schema``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.schema import FILES, render, schemas
from agent.config.load import ENV_PROFILES

CASES = Path(__file__).resolve().parent.parent / "cases"
DATA = Path(__file__).resolve().parent.parent.parent / "agent" / "data"


@pytest.fixture(autouse=True)
def _empty_shipped_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "no-shipped-profiles"))


def test_valid_site_exits_0_with_a_summary(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES / "config_valid_site")
    assert main(["validate", "site.yaml"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["mill-meter", "kiln-meter", "fan-meter", "main-incomer"]
    assert lines[0].startswith("mill-meter: profile acme-pm, rtu rs485-1 /dev/ttyUSB0 19200 8E1 unit 1, 2 points")
    assert lines[0].endswith(", every 5 s")
    assert "gateway moxa-1 10.0.0.9:502 (rtu framing) unit 1" in lines[2]
    assert "tcp 10.0.0.7:502 unit 1" in lines[3]


def test_bad_site_exits_78_with_every_issue_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES / "config_errors_in_two_files"
    monkeypatch.chdir(case)
    assert main(["validate", "site.yaml"]) == 78
    out, err = capsys.readouterr()
    assert out == ""
    expected = (case / "expected.txt").read_text()
    assert err == expected + "config not valid: 4 errors\n"


def test_warnings_do_not_fail_and_quiet_hides_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "config_slow_serial_bus")
    assert main(["validate", "site.yaml"]) == 0
    out, err = capsys.readouterr()
    assert "warning: bus rs485-1: one polling cycle needs about" in err
    assert len(out.splitlines()) == 4
    assert main(["validate", "--quiet", "site.yaml"]) == 0
    assert capsys.readouterr() == ("", "")


def test_missing_site_file_is_a_config_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 78
    assert f"{tmp_path}/nope.yaml:1:1: file not found" in capsys.readouterr().err


def test_profiles_alone(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)
    good = "config_valid_site/profiles/acme-pm.yaml"
    assert main(["validate", "--profile", good]) == 0
    assert capsys.readouterr().out == f"{good}: profile acme-pm, 2 points\n"
    bad = "config_misspelt_enum/profile.yaml"
    assert main(["validate", "--profile", good, bad]) == 78
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0].startswith(f"{bad}:5:11: points[0].kind: 'holding_registr' is not a register kind")
    assert err.splitlines()[-1] == "config not valid: 3 errors"


def test_validate_needs_something_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "give a site file or --profile" in capsys.readouterr().err


def test_plan_errors_are_reported_at_the_point(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("agent.sources.modbus.plan")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "big.yaml").write_text(
        "profile: big\naddress_base: 0\npoints:\n"
        "  - {name: serial, kind: holding_register, address: 0, type: string, length: 100}\n"
    )
    (tmp_path / "site.yaml").write_text(
        "site: s\ngateway: g\nprofile_dirs: [profiles]\n"
        "devices:\n  - {name: m, profile: big, host: 127.0.0.1, max_registers_per_request: 50}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "site.yaml"]) == 78
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (  # the device's setting is what breaks the profile: point at it, and at the point
        "site.yaml:5:73: devices[0].max_registers_per_request: 50 is too small for profile big: point 'serial' "
        "(string, profiles/big.yaml:4:5) spans 100 registers and a value cannot be split over two requests; set at "
        "least 100, or remove the setting"
    )
    (tmp_path / "site.yaml").write_text(
        "site: s\ngateway: g\nprofile_dirs: [profiles]\ndevices:\n  - {name: m, profile: big, host: 127.0.0.1}\n"
    )
    (tmp_path / "profiles" / "big.yaml").write_text(
        "profile: big\naddress_base: 0\nmax_registers_per_request: 1\npoints:\n"
        "  - {name: energy, kind: holding_register, address: 0, type: float32}\n"
    )
    assert main(["validate", "site.yaml"]) == 78
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("profiles/big.yaml:5:5: points[0]: energy spans 2 registers, more than one request")


def test_schema_command_writes_three_schemas(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    assert main(["schema", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())
    generated = schemas()
    for name, file in FILES.items():
        assert json.loads((out / file).read_text()) == generated[name]
    site = generated["site"]
    assert site["additionalProperties"] is False
    assert "devices" in site["properties"]
    profile_point = generated["profile"]["$defs"]["PointConfig"]
    assert profile_point["properties"]["address"]["description"].startswith("Address as written in the manual")


def test_schema_prints_the_chosen_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"].endswith("/site.schema.json")
    assert main(["schema", "--which", "profile"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Plant energy agent device profile"


def test_shipped_schemas_are_current() -> None:
    """Fails after a config model or the wire payload changed: run `energy-agent schema --out agent/data`."""
    for name, schema in schemas().items():
        assert (DATA / FILES[name]).read_text(encoding="utf-8") == render(schema), FILES[name]


def test_opcua_devices_are_summarised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "site.yaml").write_text(
        "site: s\ngateway: g\ndevices:\n"
        "  - name: kiln-plc\n    protocol: opcua\n    endpoint: opc.tcp://127.0.0.1:4840\n    interval_s: 2\n"
        "    client_cert: pki/cert.der\n    client_key: pki/key.pem\n    trust_dir: pki/trusted\n"
        "    points:\n      - {name: server_time, node_id: 'i=2258'}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "site.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kiln-plc: opcua opc.tcp://127.0.0.1:4840")
    assert out.endswith(", 1 points, every 2 s\n")
