"""Commissioning commands: ``init`` (a starter site file), ``list`` (profiles, roles, indicators), ``reference``
(every key of the kpi section, and the generated docs/reference/kpi.md kept up to date)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.cli import EX_BROKEN_PIPE, main
from agent.cli.reference import markdown
from agent.cli.schema import installed_dir
from agent.config.kpi import KpiSectionConfig, LineConfig
from agent.config.load import load_site
from agent.kpi.benchmarks import load_levels
from agent.model import COUNTER_ROLES, Role

REPO = Path(__file__).resolve().parents[2]
KPI_DOC = REPO / "docs" / "reference" / "kpi.md"


def test_the_kpi_reference_in_docs_is_current() -> None:
    assert KPI_DOC.read_text(encoding="utf-8") == markdown("kpi"), (
        "docs/reference/kpi.md is stale: run `energy-agent reference kpi > docs/reference/kpi.md`"
    )


@pytest.mark.parametrize("section", ["kpi", "site", "profile"])
def test_the_reference_names_every_key_and_every_link_has_its_table(
    section: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reference", section]) == 0
    text = capsys.readouterr().out
    headings = {_anchor(h) for h in re.findall(r"^## (.+)$", text, flags=re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= headings, links - headings
    if section == "kpi":
        for model in (KpiSectionConfig, LineConfig):
            for key in model.model_fields:
                assert f"| `{key}` |" in text, key
        assert "| `coverage_min` | number, ≥ 0, ≤ 1 | `0.9` |" in text
        assert "## `kpi.equipment[kind=boiler]`" in text and "| `production` | list of [ProductionRef]" in text


def _anchor(heading: str) -> str:
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def test_list_roles_gives_each_role_its_unit_and_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "roles"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {r.value for r in Role}
    assert rows["energy_import_kwh"] == ["kWh", "counter"] and rows["coal_feed_tph"] == ["t/h", "rate/level"]
    assert rows["power_factor"] == ["rate/level"]  # a ratio: no unit
    assert {name for name, cells in rows.items() if cells[-1] == "counter"} == {r.value for r in COUNTER_ROLES}


def test_list_profiles_shows_the_shipped_library_and_a_sites_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = sorted((REPO / "device_profiles").glob("*.yaml"))
    assert main(["list", "profiles"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{REPO / 'device_profiles'} ({len(shipped)} profiles):"
    assert any(line.split()[:2] == ["chint-dtsu666", "energy_meter"] for line in out)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.yaml").write_text(
        "profile: my-meter\naddress_base: 0\npoints:\n  - {name: e, kind: holding_register, address: 0, type: uint32}\n"
    )
    (tmp_path / "site.yaml").write_text("site: s\ngateway: g\nprofile_dirs: [p]\n")
    assert main(["list", "profiles", "--site", str(tmp_path / "site.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'p'} (1 profiles):" and out[2].split()[:5] == ["my-meter", "other", "-", "1"]


def test_list_indicators_gives_the_level_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "indicators"]) == 0
    out = capsys.readouterr().out.splitlines()
    clinker = load_levels().find("cement_clinker")
    assert clinker is not None
    row = next(line.split() for line in out if line.startswith("cement_clinker "))
    assert row[:6] == [
        "cement_clinker",
        clinker.kind,
        clinker.kpi,
        clinker.unit,
        f"{clinker.benchmark:g}",
        f"{clinker.baseline:g}",
    ]
    assert len(out) == 1 + len(load_levels().rows)


def test_init_writes_a_starter_that_validates_cleanly_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    argv = ["init", str(site), "--site", "cement-1", "--gateway", "kiln-gw-01", "--broker", "mqtt.centre.example"]
    assert main(argv) == 0  # no terminal under pytest: asks nothing
    capsys.readouterr()
    assert main(["validate", str(site)]) == 0
    assert capsys.readouterr().err == ""  # no warning either
    loaded = load_site(site)
    assert (loaded.site.site, loaded.site.gateway) == ("cement-1", "kiln-gw-01")
    assert loaded.site.mqtt is not None and loaded.site.mqtt.port == 8883 and loaded.site.mqtt.tls is not None
    before = site.read_text()
    assert main(["init", str(site), "--site", "other"]) == 73
    assert "exists; give --force to replace it" in capsys.readouterr().err and site.read_text() == before
    assert main(["init", str(site), "--force", "--broker", "10.0.0.5:1883"]) == 0
    mqtt = load_site(site).site.mqtt
    assert mqtt is not None and mqtt.host == "10.0.0.5" and mqtt.port == 1883 and mqtt.tls is None
    assert main(["init", str(tmp_path / "x.yaml"), "--gateway", "kiln/gw"]) == 2
    assert "MQTT topic level" in capsys.readouterr().err and not (tmp_path / "x.yaml").exists()
    assert main(["init", str(tmp_path / "bare.yaml")]) == 0  # all defaults, no broker
    assert load_site(tmp_path / "bare.yaml").site.mqtt is None
    first = (tmp_path / "bare.yaml").read_text().splitlines()[0]  # editors find the schema (completion, checks)
    assert first == f"# yaml-language-server: $schema={installed_dir() / 'site.schema.json'}"
    assert (installed_dir() / "site.schema.json").is_file()


def test_a_misspelt_timezone_is_refused_with_a_did_you_mean_by_validate_and_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: `Asia/Shangai` passed validate and killed `run` at the first KPI sample (five systemd restarts)."""
    site = tmp_path / "site.yaml"
    site.write_text("site: s1\ngateway: gw1\ntimezone: Asia/Shangai\n")
    assert main(["validate", str(site)]) == 78
    err = capsys.readouterr().err
    assert f"{site}:3:11: timezone: unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)" in err
    assert main(["init", str(tmp_path / "new.yaml"), "--timezone", "Europe/Berlim"]) == 2
    assert "(did you mean 'Europe/Berlin'?)" in capsys.readouterr().err and not (tmp_path / "new.yaml").exists()
    assert main(["init", str(tmp_path / "new.yaml"), "--timezone", "UTC"]) == 0
    assert load_site(tmp_path / "new.yaml").site.timezone == "UTC"


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    argv = [sys.executable, "-m", "agent", "init", str(tmp_path / "site.yaml"), "--broker", "mqtt.example"]
    with subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=subprocess.PIPE, cwd=tmp_path) as proc:
        os.close(secondary)
        # a refused name, Enter for the gateway, a misspelt zone then the right one
        os.write(primary, b"bad/name\ncement-2\n\nEurope/Berlim\nEurope/Berlin\n")
        seen = b""
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                seen += os.read(primary, 4096)
            except OSError:
                break
        proc.wait(timeout=10)
        os.close(primary)
        assert proc.stderr is not None
        prompts = proc.stderr.read()  # input() prompts on stderr when no readline module is loaded
    assert proc.returncode == 0, seen + prompts
    assert b"Site (plant) name [plant1]: " in prompts and b"Time zone [Asia/Shanghai]: " in prompts
    assert b"Gateway name [" in prompts and b"MQTT topic level" in seen
    assert b"unknown time zone 'Europe/Berlim' (did you mean 'Europe/Berlin'?)" in seen
    site = load_site(tmp_path / "site.yaml").site
    assert (site.site, site.timezone) == ("cement-2", "Europe/Berlin") and site.gateway


def test_a_closed_pipe_ends_a_command_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `energy-agent list profiles | head -1` once head has left
    done = subprocess.run(
        [sys.executable, "-m", "agent", "list", "roles"], stdout=write_end, stderr=subprocess.PIPE, check=False
    )
    os.close(write_end)
    assert done.returncode == EX_BROKEN_PIPE and done.stderr == b""
