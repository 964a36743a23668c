"""pydantic errors become positioned, technician-worded issues with did-you-mean."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.config.diagnostics import did_you_mean, issues_from_validation, show
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.config.yaml_source import parse_yaml


def _issues(text: str, model: type[ProfileConfig] | type[SiteConfig]) -> list[str]:
    doc = parse_yaml(text, "f.yaml")
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc.data)
    issues = issues_from_validation(caught.value, doc, model)
    return [str(i) for i in sorted(issues, key=lambda i: (i.line, i.col))]


POINT = "profile: p\naddress_base: 0\npoints:\n  - name: e\n    kind: holding_register\n    address: 0\n"


def test_did_you_mean() -> None:
    assert did_you_mean("adress", ["name", "address"]) == " (did you mean 'address'?)"
    assert did_you_mean("float", ["float16", "float32", "float64"]) == " (did you mean 'float32'?)"
    assert did_you_mean("DWORD", ["uint16", "uint32"]) == " (did you mean 'uint32'?)"
    assert did_you_mean("Holding_Register", ["coil", "holding_register"]) == " (did you mean 'holding_register'?)"
    assert did_you_mean("zzz", ["address", "name"]) == ""
    assert did_you_mean("float", ["int16"]) == ""  # an alias is offered only when allowed here


def test_ties_go_to_the_earlier_option() -> None:
    assert did_you_mean("abc", ["abd", "abe"]) == " (did you mean 'abd'?)"


def test_show() -> None:
    assert [show(v) for v in ("x", 3, 2.0, 2.5, True, None, [1], {"a": 1})] == [
        "'x'",
        "3",
        "2",
        "2.5",
        "true",
        "an empty value",
        "a list",
        "a mapping",
    ]


def test_union_tags_are_not_part_of_the_path() -> None:
    text = "site: s\ngateway: g\ndevices:\n  - name: m\n    profile: p\n    host: h\n    prot: 5\n"
    assert _issues(text, SiteConfig) == [
        "f.yaml:7:5: devices[0].prot: unknown key 'prot' (did you mean 'port'?)",
    ]


def test_bus_fields_are_checked_against_the_bus_model() -> None:
    text = "site: s\ngateway: g\nbuses:\n  - name: b\n    port: /dev/x\n    baud: 9600\n    parity: e\n"
    assert _issues(text, SiteConfig) == [
        "f.yaml:6:5: buses[0].baud: unknown key 'baud' (did you mean 'baudrate'?)",
        "f.yaml:7:13: buses[0].parity: 'e' is not a valid parity; use one of N, E, O (did you mean 'E'?)",
    ]


def test_unknown_key_without_a_close_match_lists_the_keys() -> None:
    (issue,) = _issues("profile: p\naddress_base: 0\npoints: []\nzzz: 1\n", ProfileConfig)[1:]
    assert issue.startswith("f.yaml:4:1: zzz: unknown key 'zzz'; remove it or use one of profile, description,")


def test_misspelt_key_is_reported_once_not_also_as_missing() -> None:
    text = "profile: p\naddress_base: 0\npoints:\n  - name: e\n    kind: coil\n    adress: 0\n    type: bool\n"
    assert _issues(text, ProfileConfig) == [
        "f.yaml:6:5: points[0].adress: unknown key 'adress' (did you mean 'address'?)"
    ]


def test_missing_field_points_at_the_mapping_that_lacks_it() -> None:
    text = (
        "profile: p\naddress_base: 0\nsource:\n  version: '2'\npoints:\n  - name: e\n    kind: coil\n    type: bool\n"
    )
    assert _issues(text, ProfileConfig) == [
        "f.yaml:3:1: source.document: field required: 'document' (vendor document name, e.g. 'DTSU666 user manual')",
        "f.yaml:6:5: points[0].address: field required: 'address': address as written in the manual (see address_base)",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    address: -1\n", "f.yaml:6:14: points[0].address: -1 is too small; the smallest allowed is 0"),
        ("    address: 1.5\n", "f.yaml:6:14: points[0].address: 1.5 is not a whole number"),
        ("    address: 0\n    scale: ten\n", "f.yaml:7:12: points[0].scale: 'ten' is not a number"),
        (
            "    address: 0\n    length: 200\n",
            "f.yaml:7:13: points[0].length: 200 is too large; the largest allowed is 125",
        ),
        (
            "    address: 0\n    unit: [k, W]\n",
            "f.yaml:7:11: points[0].unit: expected text, got a list; put quotes around it if it is meant as text",
        ),
        ("    address: 0\n    range: [1, 2, 3]\n", "f.yaml:7:12: points[0].range: allows at most 2 entries, got 3"),
    ],
)
def test_value_messages(line: str, message: str) -> None:
    text = POINT.replace("    address: 0\n", line) + "    type: int16\n"
    assert message in _issues(text, ProfileConfig)


def test_name_pattern_is_explained() -> None:
    text = POINT.replace("name: e", "name: 'a b'") + "    type: int16\n"
    assert _issues(text, ProfileConfig) == [
        "f.yaml:4:11: points[0].name: 'a b' is not allowed here; use letters, digits, '_', '.' and '-', "
        "at most 64 characters, no spaces"
    ]


def test_model_rule_is_reported_at_the_item_without_pydantic_prefix() -> None:
    text = POINT + "    type: int16\n    bit: 3\n"
    assert _issues(text, ProfileConfig) == ["f.yaml:4:5: points[0]: bit is only for type bit"]


def test_wrong_shape_of_the_whole_file() -> None:
    assert _issues("- a\n- b\n", ProfileConfig) == ["f.yaml:1:1: expected a mapping (key: value lines), got a list"]


def test_every_error_is_reported() -> None:
    text = (
        "profile: P!\naddress_base: 2\npoints:\n"
        "  - {name: a, kind: coil, address: 0, type: bool, colour: red}\n"
        "  - {name: b, kind: coils, address: 0, type: bool}\n"
    )
    issues = _issues(text, ProfileConfig)
    assert [i.split(": ")[0] for i in issues] == ["f.yaml:1:10", "f.yaml:2:15", "f.yaml:4:51", "f.yaml:5:21"]
    assert "2 is not a valid address base; use one of 0, 1" in issues[1]


def test_abbreviations_get_a_suggestion_when_unambiguous() -> None:
    assert did_you_mean("usr", ["type", "username", "password_file"]) == " (did you mean 'username'?)"
    assert did_you_mean("pw", ["password"]) == ""  # too short to guess
    assert did_you_mean("pss", ["password_file", "password_env"]) == ""  # two candidates: no guess


def test_tag_of_a_nested_union_is_named_after_its_parent() -> None:
    text = "site: s\ngateway: g\ndevices:\n  - name: ua\n    protocol: opcua\n    auth: {type: usrname}\n"
    issues = _issues(text, SiteConfig)
    assert any(
        i.startswith("f.yaml:6:18: devices[0].auth.type: 'usrname' is not a valid auth type; use one of anonymous,")
        and i.endswith("(did you mean 'username'?)")
        for i in issues
    )


def test_values_of_secret_keys_are_never_echoed() -> None:
    text = "site: s\ngateway: g\nmqtt:\n  host: h\n  password_env: 987654321\n"
    (issue,) = _issues(text, SiteConfig)
    assert "987654321" not in issue
    assert issue == (
        "f.yaml:5:17: mqtt.password_env: expected text, got the value given; put quotes around it if it is meant as text"
    )
