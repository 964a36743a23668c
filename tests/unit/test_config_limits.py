"""Hostile and odd input to the config loader: every one is a positioned ConfigError (exit 78), never a traceback,
never unbounded time or memory. Fuzzed with Hypothesis: whatever the text, the loader loads it or refuses it."""

from __future__ import annotations

import os
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.load import ENV_PROFILES, load_profile_checked
from agent.config.yaml_source import MAX_ALIAS_VALUES, MAX_DEPTH, parse_yaml
from agent.errors import ConfigError
from agent.runtime.compile import compile_site

REPO = Path(__file__).resolve().parents[2]


def _refused(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "f.yaml")
    return [str(i) for i in caught.value.issues]


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * 10)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    # 10^6 values from a 6-line file: the old loader expanded every one of them (10^9 for the golden case).
    (message,) = _refused(_bomb(6))
    assert message.startswith(f"f.yaml:5:45: aliases (*name) repeat more than {MAX_ALIAS_VALUES} values")
    assert "write the values out or use fewer aliases" in message


def test_aliases_may_repeat_as_much_as_the_file_writes_itself() -> None:
    # 150,000 values repeated (5 per alias: the mapping, two keys, two values), 240,000 written
    devices = "".join(f"  - {{<<: *d, name: dev-{i}, unit_id: 1, bus: b}}\n" for i in range(30_000))
    doc = parse_yaml("defaults: &d {interval_s: 5, timeout_ms: 500}\ndevices:\n" + devices, "f.yaml")
    assert doc.data["devices"][29_999] == {
        "name": "dev-29999",
        "unit_id": 1,
        "bus": "b",
        "interval_s": 5,
        "timeout_ms": 500,
    }
    assert doc.value_position(("devices", 7, "interval_s")) == doc.value_position(("devices", 7))  # merged: no own


def test_an_alias_inside_the_value_it_names_is_refused() -> None:
    assert _refused("a: &x [1, *x]\n") == [
        "f.yaml:1:11: alias *x is used inside the value it names, which would contain itself; write the value out"
    ]


def test_undefined_alias_two_documents_and_list_keys_are_positioned() -> None:
    assert _refused("a: 1\nb: *nowhere\n") == [
        "f.yaml:2:4: not valid YAML: found undefined alias *nowhere; define it first with &nowhere"
    ]
    assert _refused("a: 1\n---\nb: 2\n")[0].startswith("f.yaml:2:1: a second YAML document starts here")
    assert _refused("? [a, b]\n: 1\n") == [
        "f.yaml:1:3: a key must be plain text or a number, not a list or mapping; write it as text"
    ]
    assert _refused("a:\n  <<: [1, 2]\n  b: 3\n")[0].startswith("f.yaml:2:3: << merges a mapping")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_deeper_than_the_limit_is_refused(style: str) -> None:
    def nested(depth: int) -> str:
        if style == "flow":
            return "a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"
        return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth - 1)) + f"{'  ' * (depth - 1)}end: 1\n"

    assert parse_yaml(nested(MAX_DEPTH), "f.yaml").data is not None  # exactly the limit loads
    (message,) = _refused(nested(MAX_DEPTH + 1))
    assert f"lists and mappings are nested more than {MAX_DEPTH} deep here" in message
    (message,) = _refused(nested(5000))  # the old loader died with RecursionError
    assert message.startswith("f.yaml:")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('!!python/object/apply:os.system ["echo owned"]', "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!vault secret", "!vault"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!omap [a: 1]", "!!omap"),
        ("!<tag:example.com,2000:app/foo> x", "tag:example.com,2000:app/foo"),
    ],
)
def test_tags_that_construct_objects_are_refused_where_written(value: str, shown: str) -> None:
    assert _refused(f"site: plant\nx: {value}\n") == [
        f"f.yaml:2:4: tag {shown} is not allowed: a config file holds plain values only (text, numbers, "
        "true/false, lists, mappings); remove the tag"
    ]


def test_standard_tags_of_plain_types_are_kept() -> None:
    doc = parse_yaml("a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: !!bool true\ne: !!null ''\nf: !!map {x: 1}\n", "f")
    assert doc.data == {"a": "5", "b": 7, "c": 1.0, "d": True, "e": None, "f": {"x": 1}}
    assert _refused("a: !!int seven\n") == ["f.yaml:1:4: 'seven' is not a valid !!int; remove the tag or fix the value"]


def test_scalars_follow_yaml_1_2_as_before() -> None:
    text = "a: yes\nb: on\nc: 0x1F\nd: 0o17\ne: 017\nf: 1_000\ng: .inf\nh: ~\ni: 2024-01-01\nj: 1e3\nk: +.5\nl: 1:20\n"
    data = parse_yaml(text, "f").data
    assert data == {
        "a": "yes",
        "b": "on",
        "c": 31,
        "d": 15,
        "e": 17,
        "f": 1000,
        "g": float("inf"),
        "h": None,
        "i": "2024-01-01",  # YAML 1.2 core schema: a date is text
        "j": 1000.0,
        "k": 0.5,
        "l": "1:20",
    }


def test_validate_refuses_a_bomb_with_exit_78_and_no_traceback(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: plant\ngateway: gw\n" + _bomb(9))  # 10^9 values if expanded
    done = subprocess.run(
        [sys.executable, "-m", "agent", "validate", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, ENV_PROFILES: str(tmp_path)},
    )
    assert done.returncode == 78
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{site}:7:45: aliases (*name) repeat more than {MAX_ALIAS_VALUES} values")


# ---- fuzzing: load it or refuse it, nothing else -------------------------------------------------------------

_YAMLISH = st.text(
    alphabet=string.ascii_letters[:6] + string.digits[:4] + " \n\t:-[]{},&*!?|>'\"#%@`<=.~\\", max_size=80
)


@settings(max_examples=400, deadline=None)
@given(_YAMLISH)
def test_any_text_is_loaded_or_refused(text: str) -> None:
    try:
        parse_yaml(text, "f.yaml")
    except ConfigError as e:
        assert e.issues and all(i.file == "f.yaml" and i.line >= 1 and i.col >= 1 for i in e.issues)


def loaded_or_refused(path: Path, data: Any, load: Callable[[Path], object]) -> None:
    """``data`` written to ``path`` as YAML is loaded, or refused with issues (and no other exception)."""
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        load(path)
    except ConfigError as e:
        assert e.issues


_PROFILE_KEYS = ["profile", "address_base", "points", "byte_order", "max_registers_per_request", "max_gap", "x"]
_POINT_KEYS = ["name", "kind", "address", "type", "order", "length", "bit", "scale", "range", "role", "unit", "x"]
_WORDS = ["holding_register", "coil", "float32", "uint16", "bit", "string", "ABCD", "p", "energy_import_kwh", "1"]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-70000, 70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_WORDS),
    st.text(max_size=5),
)
_values: Any = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
_points = st.lists(st.dictionaries(st.sampled_from(_POINT_KEYS), st.one_of(_scalars, _values), max_size=8), max_size=4)
_profiles = st.dictionaries(st.sampled_from(_PROFILE_KEYS), st.one_of(_scalars, _values, _points), max_size=7)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_profiles, _values))
def test_any_profile_structure_is_loaded_or_refused(tmp_path: Path, data: Any) -> None:
    loaded_or_refused(tmp_path / "p.yaml", data, load_profile_checked)


_SITE_KEYS = ["site", "gateway", "devices", "buses", "mqtt", "kpi", "spool", "monitoring", "profile_dirs", "x"]
_DEVICE_KEYS = ["name", "profile", "host", "bus", "unit_id", "protocol", "endpoint", "points", "interval_s", "x"]
_devices = st.lists(
    st.dictionaries(st.sampled_from(_DEVICE_KEYS), st.one_of(_scalars, _values), max_size=6), max_size=3
)
_sites = st.dictionaries(st.sampled_from(_SITE_KEYS), st.one_of(_scalars, _values, _devices), max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_sites)
def test_any_site_structure_is_compiled_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict[str, Any]
) -> None:
    monkeypatch.setenv(ENV_PROFILES, str(REPO / "device_profiles"))
    loaded_or_refused(tmp_path / "site.yaml", data, compile_site)


def test_without_libyaml_the_pure_python_parser_gives_the_same_documents_and_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agent.config.yaml_source as yaml_source

    texts = [(REPO / "deploy" / "site.example.yaml").read_text(), "base: &b {port: 502}\ndev: {<<: *b, name: x}\n"]
    with_libyaml = [parse_yaml(t, "f.yaml") for t in texts]
    monkeypatch.setattr(yaml_source, "_Parser", yaml.SafeLoader)
    for text, expected in zip(texts, with_libyaml, strict=True):
        doc = parse_yaml(text, "f.yaml")
        assert doc.data == expected.data
        assert dict(doc.values) == dict(expected.values) and dict(doc.keys) == dict(expected.keys)
    assert "repeat more than" in _refused(_bomb(6))[0]
    assert f"nested more than {MAX_DEPTH} deep" in _refused("a: " + "[" * 5000 + "]" * 5000)[0]
    assert "tag !!python/object/apply:os.system is not allowed" in _refused("a: !!python/object/apply:os.system []")[0]
