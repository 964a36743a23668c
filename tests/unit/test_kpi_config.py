"""The kpi section: validation, check() with paths into the site file, and the shipped level and factor tables."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest

from agent.config.kpi import KpiSectionConfig, declared_kpis
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.kpi.benchmarks import load_levels
from agent.kpi.check import check
from agent.kpi.engine import KpiEngine
from agent.kpi.factors import load_data_yaml, load_factors
from agent.model import Role

PROFILE = ProfileConfig.model_validate(
    {
        "profile": "meter",
        "address_base": 0,
        "points": [
            {"name": "energy", "kind": "holding_register", "address": 0, "type": "uint32", "role": "energy_import_kwh"},
            {"name": "power", "kind": "input_register", "address": 0, "type": "float32", "role": "active_power_kw"},
        ],
    }
)


def site(kpi: dict[str, Any]) -> SiteConfig:
    devices = [{"name": n, "profile": "meter", "host": "127.0.0.1"} for n in ("main-meter", "kiln-meter")] + [
        {"name": "pv", "profile": "meter", "host": "127.0.0.1", "renewable": True}
    ]
    return SiteConfig.model_validate({"site": "s", "gateway": "g", "devices": devices, "kpi": kpi})


def test_a_correct_section_has_no_issues_and_builds_an_engine() -> None:
    kpi = {
        "lines": [
            {
                "name": "l1",
                "indicator": "ferrosilicon",
                "level_edition": "2023",
                "production": [{"device": "kiln-meter", "point": "energy", "kind": "counter"}],
                "electricity": [{"device": "main-meter", "role": "energy_import_kwh"}],
                "fuels": [{"device": "kiln-meter", "point": "power", "kind": "rate", "carrier": "coke"}],
            }
        ],
        "renewable": [{"total": [{"device": "main-meter", "role": "energy_import_kwh"}]}],
        "custom": [{"name": "c", "formula": 'l1.sec_kwh_per_t + mean("main-meter", "active_power_kw")'}],
    }
    s = site(kpi)
    assert check(s, {"meter": PROFILE}) == []
    eng = KpiEngine.from_site(s, {"meter": PROFILE}, lambda: 0.0)
    assert set(eng.kpi_names()) <= set(declared_kpis(s.kpi or KpiSectionConfig()))
    assert "site.c" in eng.kpi_names()


def test_check_reports_unknown_references_with_paths() -> None:
    kpi = {
        "windows": ["15m", "7m"],
        "lines": [
            {
                "name": "l1",
                "indicator": "clinkr",
                "production": [{"device": "kiln-metr", "role": "production_t"}],
                "electricity": [
                    {"device": "main-meter", "role": "production_t"},
                    {"device": "main-meter", "point": "energyy", "kind": "counter"},
                ],
                "fuels": [{"device": "main-meter", "role": "energy_import_kwh", "carrier": "coal"}],
            }
        ],
        "custom": [{"name": "c", "formula": 'l1.sec + total("nope", "x")'}],
        "factors": {"grid_year": 2019},
    }
    issues = dict(check(site(kpi), {"meter": PROFILE}))
    assert issues[("kpi", "windows", 1)].startswith("window '7m' must divide a day")
    assert "unknown indicator 'clinkr'" in issues[("kpi", "lines", 0, "indicator")]
    assert "did you mean 'kiln-meter'" in issues[("kpi", "lines", 0, "production", 0, "device")]
    assert "no point with role production_t" in issues[("kpi", "lines", 0, "electricity", 0, "role")]
    assert "did you mean 'energy'" in issues[("kpi", "lines", 0, "electricity", 1, "point")]
    assert "unknown carrier 'coal'" in issues[("kpi", "lines", 0, "fuels", 0, "carrier")]
    assert "no grid factor for 2019/national" in issues[("kpi", "factors", "grid_scope")]
    custom = [m for p, m in check(site(kpi), {"meter": PROFILE}) if p == ("kpi", "custom", 0, "formula")]
    assert any("unknown KPI 'l1.sec'" in m for m in custom) and any("unknown device 'nope'" in m for m in custom)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"lines": [{"name": "l", "production": [{"device": "d", "role": "production_t", "point": "x"}]}]}, "not both"),
        ({"lines": [{"name": "l", "production": [{"device": "d", "point": "x"}]}]}, "needs kind"),
        ({"custom": [{"name": "c", "formula": "1 +"}]}, "position 4"),
        ({"shifts": ["8:00"]}, "HH:MM"),
        ({"factors": {"electricity_method": "equal_value"}}, "needs electricity_equal_value_kgce_per_kwh"),
        ({"levels": [{"indicator": "x", "benchmark": 5, "baseline": 4, "edition": "1", "standard": "s"}]}, "worse"),
        ({"linez": []}, "Extra inputs"),
    ],
)
def test_invalid_sections_are_rejected_with_a_reason(section: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        KpiSectionConfig.model_validate(section)


def test_every_level_row_has_edition_source_and_status_and_unverified_rows_say_so() -> None:
    raw = load_data_yaml("energy_levels.yaml")
    sources = set(raw["sources"])
    for row in load_levels().rows:
        assert row.status in {"OK", "2nd", "UNCONF", "calc"}
        assert row.edition and row.standard
        assert {s.strip() for s in row.source.split(",")} <= sources
        assert row.benchmark <= row.baseline
        if row.status != "OK":
            assert not row.official and "official" in row.reference()
    assert all(r.status != "OK" for r in load_levels().rows if r.kind == "policy")


def test_factor_table_matches_the_reference_values() -> None:
    f = load_factors()
    assert f.carriers["electricity"].kgce_per_unit == 0.1229
    assert f.grid_factor(2023, "inner_mongolia") is not None
    assert f.fuels["bituminous"].tco2_per_unit() == pytest.approx(1.7417, abs=1e-4)
    assert f.fuels["natural_gas"].tco2_per_unit() * 1e4 == pytest.approx(21.622, abs=1e-3)
    raw = load_data_yaml("energy_factors.yaml")
    for c in f.carriers.values():
        assert c.status in {"OK", "2nd", "UNCONF", "calc"}
        assert {s.strip() for s in c.source.split(",")} <= set(raw["sources"])


def test_check_reports_unit_mismatch_missing_inputs_cycles_and_equipment() -> None:
    kpi = {
        "lines": [
            {
                "name": "glass",
                "indicator": "flat_glass_over_800",
                "production": [{"device": "kiln-meter", "point": "energy", "kind": "counter"}],
                "electricity": [{"device": "main-meter", "role": "energy_import_kwh"}],
            },
            {
                "name": "al",
                "indicator": "electrolytic_aluminium",
                "production": [{"device": "kiln-meter", "point": "energy", "kind": "counter"}],
                "baseline": {"variables": [{"name": "p", "production": True}]},
            },
        ],
        "equipment": [
            {
                "kind": "motor",
                "name": "m1",
                "device": "main-meter",
                "rated_power_kw": 10,
                "shaft_power": {"device": "main-meter", "role": "shaft_power_kw"},
            },
            {"kind": "compressor", "name": "c1", "device": "ghost"},
        ],
        "custom": [
            {"name": "a", "formula": "site.b + 1"},
            {"name": "b", "formula": "site.a * 2"},
            {"name": "w", "formula": "glass.production", "windows": ["day", "month"]},
        ],
    }
    issues = dict(check(site(kpi), {"meter": PROFILE}))
    assert "set production_unit: weight_box" in issues[("kpi", "lines", 0, "production_unit")]
    assert "list the line's electricity meters" in issues[("kpi", "lines", 1, "electricity")]
    assert "needs the line's electricity meters" in issues[("kpi", "lines", 1, "baseline", "energy")]
    assert "no point with role shaft_power_kw" in issues[("kpi", "equipment", 0, "shaft_power", "role")]
    assert "unknown device 'ghost'" in issues[("kpi", "equipment", 1, "device")]
    assert "depends on itself" in issues[("kpi", "custom", 0, "formula")]
    assert "not computed in window month" in issues[("kpi", "custom", 2, "windows")]
    with pytest.raises(ValueError, match="depends on itself"):
        KpiEngine.from_site(site(kpi), {"meter": PROFILE}, lambda: 0.0)


def test_opcua_devices_are_checked_against_their_own_points() -> None:
    opcua = {
        "name": "kiln-plc",
        "protocol": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        "security": {"policy": "None", "mode": "None", "allow_none": True},
        "points": [{"name": "coal", "node_id": "ns=2;s=Coal", "unit": "t", "role": "coal_t"}],
    }
    s = SiteConfig.model_validate(
        {
            "site": "s",
            "gateway": "g",
            "devices": [opcua],
            "kpi": {
                "lines": [
                    {
                        "name": "l1",
                        "production": [{"device": "kiln-plc", "role": "production_t"}],
                        "fuels": [{"device": "kiln-plc", "point": "coal", "kind": "counter", "carrier": "raw_coal"}],
                    }
                ]
            },
        }
    )
    issues = dict(check(s, {}))
    assert issues == {
        ("kpi", "lines", 0, "production", 0, "role"): (
            "device 'kiln-plc' (its points) has no point with role production_t; its roles: coal_t"
        )
    }
    eng = KpiEngine.from_site(s, {}, lambda: 0.0)
    assert eng.devices["kiln-plc"].roles == {"coal": Role.COAL_T}
