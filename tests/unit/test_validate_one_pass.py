"""Every KPI mistake in one ``validate`` run (issue 12): a site with a mistyped role, a role its device lacks, an
unknown indicator, a formula naming an unknown KPI and a window that does not exist, plus a bad device elsewhere,
is refused once with all of them, each at its line and column. It used to take one round per layer: the models
first, the KPI cross-checks only once everything else was clean."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import main
from agent.errors import EX_CONFIG, ConfigError
from agent.runtime.compile import compile_site

SITE = """\
site: plant
gateway: gw-1
state_dir: state
devices:
  - {name: meter, profile: generic-3ph-meter, host: 192.0.2.1}
  - {name: counter, profile: generic-production-counter, host: 192.0.2.2}
  - {name: spare, profile: generic-3ph-meter, host: 192.0.2.3, port: 70000}
kpi:
  windows: [15m, 1h, dya]
  lines:
    - name: mill
      indicator: cement_clinkr
      production: [{device: counter, role: production_t}]
      electricity: [{device: meter, role: energy_import_kwhh}]
      fuels: [{device: counter, role: coal_t, carrier: raw_coal}]
  custom:
    - {name: ratio, formula: "mill.sec_kwh_per_tt * 2"}
"""
EXPECTED = [
    "site.yaml:7:70: devices[2].port: 70000 is too large; the largest allowed is 65535",
    "site.yaml:9:22: kpi.windows[2]: 'dya' is not a window: use e.g. 15m, 1h, 8h, shift, day, month, year or 12mo "
    "(rolling 12 months)",
    "site.yaml:12:18: kpi.lines[0].indicator: unknown indicator 'cement_clinkr' (did you mean 'cement_clinker'?)",
    "site.yaml:14:43: kpi.lines[0].electricity[0].role: 'energy_import_kwhh' is not a point role",
    "site.yaml:15:39: kpi.lines[0].fuels[0].role: device 'counter' (profile generic-production-counter) has no point "
    "with role coal_t; its roles: production_rate_tph, production_t",
    "site.yaml:17:30: kpi.custom[0].formula: unknown KPI 'mill.sec_kwh_per_tt' (did you mean 'mill.sec_kwh_per_t'?)",
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refusal(site: str) -> list[str]:
    Path("site.yaml").write_text(site)
    with pytest.raises(ConfigError) as e:
        compile_site(Path("site.yaml"))
    return [str(i) for i in e.value.issues]


def test_validate_reports_every_kpi_mistake_with_a_bad_device_in_one_run(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "site.yaml").write_text(SITE)
    assert main(["validate", "site.yaml"]) == EX_CONFIG
    lines = capsys.readouterr().err.splitlines()
    errors = [line for line in lines if line.startswith("site.yaml:")]
    assert len(errors) == len(EXPECTED), lines
    for expected, got in zip(EXPECTED, errors, strict=True):
        assert got.startswith(expected)
    assert lines[-1] == f"config not valid: {len(EXPECTED)} errors"


def test_a_line_that_does_not_validate_draws_no_unknown_kpi_from_the_formulas_naming_it(folder: Path) -> None:
    """The line lacks production (required): its KPIs are not 'unknown', the missing key is the one mistake."""
    site = SITE.replace("      production: [{device: counter, role: production_t}]\n", "")
    issues = _refusal(site)
    assert [i.split(": ", 2)[:2] for i in issues if "kpi." in i] == [
        ["site.yaml:9:22", "kpi.windows[2]"],
        ["site.yaml:11:7", "kpi.lines[0].production"],
        ["site.yaml:13:43", "kpi.lines[0].electricity[0].role"],
    ]


def test_a_device_that_does_not_validate_draws_no_unknown_device(folder: Path) -> None:
    """The KPI section names the bad device: its port is the mistake, the reference to it is not."""
    site = SITE.replace("{device: counter, role: production_t}", "{device: spare, role: energy_import_kwh}")
    issues = _refusal(site)
    assert not [i for i in issues if "unknown device" in i]
    assert any(i.startswith("site.yaml:12:18: kpi.lines[0].indicator: unknown indicator") for i in issues)
    assert issues[0].startswith("site.yaml:7:70: devices[2].port: 70000 is too large")


def test_pruned_list_items_keep_the_indices_as_written(folder: Path) -> None:
    """Items after one that did not validate are reported at their own index, not shifted down by one."""
    site = SITE.replace(
        "      electricity: [{device: meter, role: energy_import_kwhh}]",
        "      electricity: [{device: meter, role: energy_import_kwhh}, {device: counter, role: active_power_kw}]",
    )
    issues = _refusal(site)
    assert any(i.startswith("site.yaml:14:88: kpi.lines[0].electricity[1].role: device 'counter'") for i in issues)


def test_a_site_whose_other_checks_fail_still_gets_its_kpi_references_checked(folder: Path) -> None:
    """No model error at all, but two devices share a name (the loader's own check): the KPI references still run."""
    site = SITE.replace(", port: 70000", "").replace("name: spare", "name: meter").replace("kwhh", "kwh")
    issues = _refusal(site)
    assert any(i.startswith("site.yaml:7:12: devices[2].name:") for i in issues), issues
    assert any(i.startswith("site.yaml:12:18: kpi.lines[0].indicator: unknown indicator") for i in issues)
    assert len(issues) == 5


VALUES: list[Any] = [None, 0, -1, 70000, True, "", "x", "15m", [], {}, ["a"], {"zz": 1}, "energy_import_kwh", "meter"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_to_a_site_is_reported_never_a_crash(data: st.DataObject) -> None:
    """Whatever part of the site is wrong, the salvaged KPI check runs or stands aside: a ConfigError, no traceback,
    and every issue positioned in the file."""
    doc: Any = yaml.safe_load(SITE)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for el in path[:-1]:
            parent = parent[el]
        change = data.draw(st.sampled_from([*VALUES, ...]))
        if change is ...:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(change)
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site.yaml"
        site.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            compile_site(site)
        except ConfigError as e:
            assert e.issues
            assert all(i.line >= 1 and i.file == str(site) for i in e.issues)


def _paths(node: Any, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [at] if at else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out += _paths(value, (*at, key))
    return out
