"""The JSON Schemas editors use accept what the loader accepts (issue 12): the same documents go to the loader's
models and to a JSON Schema validator, which must agree: every shipped profile, the example site, every config case
under tests/cases and Hypothesis variants of them. What JSON Schema cannot say is listed in ``BEYOND_SCHEMA`` and
left to ``validate``. Also: every key has a description, a device's ``profile`` offers the shipped names, and
``energy-agent schema --path`` tells an editor where the installed schemas are."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.cli import main
from agent.cli.schema import FILES, installed_dir, schemas, shipped_profiles
from agent.config.base import StrictModel
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.config.yaml_source import load_yaml, parse_yaml
from agent.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[StrictModel]] = {"site": SiteConfig, "profile": ProfileConfig}
# Rules the models check and JSON Schema cannot state: an order between two values, a grammar, a set of names that
# divide a day. A document the models refuse only for these may pass the schema; nothing else may differ.
BEYOND_SCHEMA = [
    r"^range must be \[min, max\]",  # points: min <= max
    r"^efficiency_plausible is \[low, high\]",
    r"must not be worse \(higher\) than baseline",  # levels: benchmark <= baseline
    r"^reconnect_max_s must be at least reconnect_min_s$",
    r"^sliding_step_min must divide block_min$",
    r" at position \d+",  # a custom KPI's formula
    r"is not a window: use|must divide a day evenly",  # grade_windows
    r"is not a local time HH:MM|^shifts needs at least one start time, each once$",
    r"^maximum demand is kept per period",
    r"^unknown time zone ",  # the IANA database is the machine's, not the schema's
    r"^electricity_method equal_value needs",
    r"^a percent deadband is 0\.\.100",
]
KPI = """\
windows: [15m, 1h, day]
shifts: ["06:00", "18:00"]
factors: {grid_year: 2023, grid_scope: national}
lines:
  - name: kiln
    indicator: cement_clinker
    production: [{device: kiln1, role: production_t, equivalent_factor: 1.0}]
    electricity: [{device: kiln1-meter, point: energy_import, kind: counter, counter_bits: 32}]
    fuels: [{device: kiln1, role: coal_t, carrier: raw_coal, lhv_gj_per_unit: 22.0}]
    credits: [{device: kiln1-meter, role: energy_export_kwh, carrier: electricity, co2: grid}]
    corrections: {altitude_m: 1650}
    baseline: {variables: [{name: clinker, production: true}], coefficients: {intercept: 1, clinker: 2}}
equipment:
  - {kind: boiler, name: b1, device: kiln1, steam_state: saturated, steam_dryness: 0.98,
     fuel: {device: kiln1, role: gas_m3, carrier: natural_gas}}
  - {kind: motor, name: m1, device: raw-mill-vfd, rated_power_kw: 250, efficiency_plausible: [0.5, 1.0]}
  - {kind: pump, name: p1, device: raw-mill-vfd, density_kg_m3: 998}
demand: [{name: site, meters: [{device: kiln1-meter, role: energy_import_kwh}], block_min: 15, contracted_kw: 800}]
power_factor: [{name: site, active: [{device: kiln1-meter, role: energy_import_kwh}],
                reactive: [{device: kiln1-meter, role: reactive_energy_kvarh}]}]
renewable: [{total: [{device: kiln1-meter, role: energy_import_kwh}]}]
balance: [{name: main, main: {device: kiln1-meter, role: energy_import_kwh},
           subs: [{device: raw-mill-vfd, role: energy_import_kwh}]}]
custom: [{name: ratio, scope: kiln, formula: "kiln.sec_kwh_per_t * 2", unit: kWh/t}]
levels: [{indicator: own_clinker, benchmark: 100, baseline: 110, edition: "2024", standard: site notice}]
park: {name: park}
"""


def _data(path: Path) -> Any:
    return load_yaml(path, str(path)).data


def _kind(path: Path) -> str:
    return "profile" if path.name == "profile.yaml" or path.parent.name in ("profiles", "device_profiles") else "site"


def _documents() -> list[tuple[str, Path]]:
    """(schema, file) of every shipped profile, the example site and every config case that parses as YAML."""
    files = [*sorted((REPO / "device_profiles").glob("*.yaml")), REPO / "deploy" / "site.example.yaml"]
    files += sorted((REPO / "tests" / "cases").rglob("*.yaml"))
    out = []
    for path in files:
        try:
            _data(path)
        except ConfigError:
            continue  # not YAML the loader reads (malformed, tags, alias bombs): no document to compare
        out.append((_kind(path), path))
    return out


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schemas()[kind])


VALIDATORS = {kind: _validator(kind) for kind in MODELS}


def _disagreement(kind: str, data: Any) -> str | None:
    """Why the models and the schema disagree about ``data``, or None when they agree (or differ only by
    BEYOND_SCHEMA)."""
    try:
        MODELS[kind].from_document(data)
        model_errors: list[str] = []
    except ValidationError as e:
        model_errors = [f"{err['loc']}: {err['msg'].removeprefix('Value error, ')}" for err in e.errors()]
    schema_errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATORS[kind].iter_errors(data)]
    if bool(model_errors) == bool(schema_errors):
        return None
    if model_errors and all(any(re.search(rule, m.split(": ", 1)[1]) for rule in BEYOND_SCHEMA) for m in model_errors):
        return None
    return f"models: {model_errors or 'accept'}; schema: {schema_errors or 'accepts'}"


@pytest.mark.parametrize(("kind", "path"), _documents(), ids=lambda v: str(v).removeprefix(str(REPO) + "/"))
def test_schema_and_loader_agree_on_every_shipped_document(kind: str, path: Path) -> None:
    assert _disagreement(kind, _data(path)) is None


def test_the_documents_include_both_verdicts() -> None:
    """The comparison above sees refused documents too, not only valid ones."""
    verdicts = set()
    for kind, path in _documents():
        try:
            MODELS[kind].from_document(_data(path))
            verdicts.add(True)
        except ValidationError:
            verdicts.add(False)
    assert verdicts == {True, False}


def _bases() -> list[tuple[str, Any]]:
    site = _data(REPO / "deploy" / "site.example.yaml")
    with_kpi = {**copy.deepcopy(site), "kpi": parse_yaml(KPI, "kpi.yaml").data}
    profiles = [_data(REPO / "device_profiles" / f"{n}.yaml") for n in ("generic-3ph-meter", "abb-acs880")]
    return [("site", site), ("site", with_kpi), *(("profile", p) for p in profiles)]


BASES = _bases()
VALUES: list[Any] = [None, 0, -1, 1, 70000, 0.5, True, False, "", "x", "502", "15m", "bit", "string", "coil"]
VALUES += ["opcua", "counter", "None", "saturated", "factor", [], {}, ["a"], [1, 0], {"zz": 1}]


def _paths(data: Any, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [at] if at else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        out += _paths(value, (*at, key))
    return out


def _mutate(data: Any, path: tuple[str | int, ...], change: Any) -> None:
    """Replace the value at ``path`` with ``change``; ``...`` deletes it, ``("key", name)`` adds a key beside it."""
    parent = data
    for el in path[:-1]:
        parent = parent[el]
    if change is ...:
        del parent[path[-1]]
    elif isinstance(change, tuple) and isinstance(parent, dict):
        parent[change[1]] = 1
    elif not isinstance(change, tuple):
        parent[path[-1]] = copy.deepcopy(change)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_schema_and_loader_agree_on_variants(data: st.DataObject) -> None:
    """Change one or two values of a valid document (delete a key, add an unknown one, put another type or value)."""
    kind, base = data.draw(st.sampled_from(BASES))
    doc = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(doc)))
        change = data.draw(st.sampled_from([*VALUES, ..., ("key", "zz_unknown")]))
        _mutate(doc, path, change)
    assert _disagreement(kind, doc) is None


@pytest.mark.parametrize(
    ("kind", "yaml_text", "accepted"),
    [
        # the loader took true for 1 and "502" for 502 (pydantic's lax mode); the schema never did
        ("profile", "profile: x\naddress_base: true\npoints: [{name: a, kind: coil, address: 0, type: bool}]", False),
        ("profile", "profile: x\naddress_base: 0\npoints: [{name: a, kind: coil, address: '5', type: bool}]", False),
        ("site", "site: s\ngateway: g\ndevices: [{name: d, profile: p, host: h, port: '502'}]", False),
        ("site", "site: s\ngateway: g\nbuses: [{name: b, port: /dev/ttyS0, stopbits: true}]", False),
        # a YAML shorthand the loader reads: `protocol: 5` is MQTT 5
        ("site", "site: s\ngateway: g\nmqtt: {host: h, protocol: 5}", True),
        # the schema said nothing of these model rules
        ("profile", "profile: x\naddress_base: 0\npoints: [{name: a, kind: coil, address: 0, type: int16}]", False),
        (
            "profile",
            "profile: x\naddress_base: 0\npoints: [{name: a, kind: holding_register, address: 0, type: bit}]",
            False,
        ),
        ("site", "site: s\ngateway: g\ndevices: [{name: d, profile: p, host: h, bus: b}]", False),
        (
            "site",
            "site: s\ngateway: g\ndevices: [{name: d, endpoint: 'opc.tcp://h:4840', points: [{name: p, node_id: 'i=1'}]}]",
            False,
        ),
    ],
)
def test_schema_and_loader_agree_where_they_used_to_differ(kind: str, yaml_text: str, accepted: bool) -> None:
    data = parse_yaml(yaml_text, "t.yaml").data
    assert VALIDATORS[kind].is_valid(data) is accepted
    assert _disagreement(kind, data) is None


def _properties(schema: Any, at: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(where, property schema) of every property anywhere in ``schema``."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found += [(f"{at}.{name}", prop) for name, prop in value.items() if isinstance(prop, dict)]
            found += _properties(value, f"{at}/{key}")
    elif isinstance(schema, list):
        for item in schema:
            found += _properties(item, at)
    return found


def _model_properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Properties of the models (not those of the if/then rules, which restate a property)."""
    return [(at, p) for at, p in _properties(schema) if not re.search(r"/(allOf|if|then|else|not|anyOf|oneOf)\b", at)]


@pytest.mark.parametrize("kind", ["site", "profile"])
def test_every_key_has_a_description(kind: str) -> None:
    missing = [at for at, prop in _model_properties(schemas()[kind]) if not str(prop.get("description", "")).strip()]
    assert missing == []


def test_a_device_profile_offers_the_shipped_names_and_takes_any_other() -> None:
    names = shipped_profiles()
    assert {"generic-3ph-meter", "chint-dtsu666", "siemens-pac3200"} <= set(names)
    assert names == sorted(p.stem for p in (REPO / "device_profiles").glob("*.yaml"))
    modbus = [n for n in names if not n.startswith("dlt645-")]
    prop = schemas()["site"]["$defs"]["ModbusDeviceConfig"]["properties"]["profile"]
    assert prop["examples"] == modbus
    assert {"enum": modbus, "description": "a profile shipped with the agent"} in prop["anyOf"]
    meters = schemas()["site"]["$defs"]["Dlt645DeviceConfig"]["properties"]["profile"]
    assert meters["examples"] == [n for n in names if n.startswith("dlt645-")] != []
    own = {"site": "s", "gateway": "g", "devices": [{"name": "d", "profile": "acme-own-meter", "host": "h"}]}
    assert VALIDATORS["site"].is_valid(own)


def test_schema_path_names_the_folder_with_the_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--path"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    for name, schema in schemas().items():
        assert json.loads((folder / FILES[name]).read_text(encoding="utf-8")) == schema


def test_schema_path_prefers_the_copies_install_sh_puts_beside_the_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "opt" / "energy-agent" / "venv"))
    assert installed_dir() == REPO / "agent" / "data"  # nothing beside the venv yet
    beside = tmp_path / "opt" / "energy-agent" / "schemas"
    assert main(["schema", "--out", str(beside)]) == 0
    assert installed_dir() == beside.resolve()


@pytest.mark.parametrize("section", ["site", "profile"])
def test_the_site_and_profile_references_in_docs_are_current(section: str) -> None:
    """Like docs/reference/kpi.md: what the descriptions say, readable without an editor."""
    from agent.cli.reference import markdown

    doc = REPO / "docs" / "reference" / f"{section}.md"
    assert doc.read_text(encoding="utf-8") == markdown(section), (
        f"docs/reference/{section}.md is stale: run `energy-agent reference {section} > {doc.relative_to(REPO)}`"
    )


def test_a_quoted_number_or_boolean_is_refused_with_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The loader reads values as written (as the schema does): a quoted number is text, and the message says so."""
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "profile: p\naddress_base: true\npoints:\n"
        "  - {name: a, kind: holding_register, address: '5', type: uint16, scale: '0.1'}\n"
    )
    assert main(["validate", "--profile", str(profile)]) == 78
    assert capsys.readouterr().err.splitlines() == [
        f"{profile}:2:15: address_base: true is not a valid address base; use one of 0, 1",
        f"{profile}:4:48: points[0].address: '5' is quoted, so it is text; write it without quotes",
        f"{profile}:4:74: points[0].scale: '0.1' is quoted, so it is text; write it without quotes",
        "config not valid: 3 errors",
    ]
