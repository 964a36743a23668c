"""YAML loading keeps 1-based positions of keys, values and items; duplicates and syntax errors are one issue each."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from agent.config.yaml_source import format_path, load_yaml, parse_yaml
from agent.errors import ConfigError

TEXT = """\
site: plant
devices:
  - name: m1
    tags: {line: kiln1}
  -
    name: m2
    port: 503
ratio: 1.5
on: true
list: [a, b]
"""


def test_data_is_plain_python() -> None:
    doc = parse_yaml(TEXT, "s.yaml")
    assert doc.data == {
        "site": "plant",
        "devices": [{"name": "m1", "tags": {"line": "kiln1"}}, {"name": "m2", "port": 503}],
        "ratio": 1.5,
        "on": True,
        "list": ["a", "b"],
    }
    assert type(doc.data) is dict
    assert type(doc.data["devices"]) is list
    assert type(doc.data["devices"][1]["port"]) is int
    assert type(doc.data["ratio"]) is float
    assert type(doc.data["on"]) is bool
    assert type(doc.data["site"]) is str


def test_positions_of_keys_values_and_items() -> None:
    doc = parse_yaml(TEXT, "s.yaml")
    assert doc.key_position(("site",)) == (1, 1)
    assert doc.value_position(("site",)) == (1, 7)
    assert doc.value_position(("devices", 0)) == (3, 5)
    assert doc.value_position(("devices", 0, "tags", "line")) == (4, 18)
    assert doc.key_position(("devices", 1, "port")) == (7, 5)
    assert doc.value_position(("devices", 1, "port")) == (7, 11)
    assert doc.value_position(("list", 1)) == (10, 11)


def test_absent_path_falls_back_to_nearest_written_ancestor() -> None:
    doc = parse_yaml(TEXT, "s.yaml")
    assert doc.value_position(("devices", 1, "unit_id")) == doc.value_position(("devices", 1))
    assert doc.value_position(("nothing", "here")) == (1, 1)


def test_issue_formats_compiler_style() -> None:
    doc = parse_yaml(TEXT, "s.yaml")
    assert str(doc.issue(("devices", 1, "port"), "bad port")) == "s.yaml:7:11: devices[1].port: bad port"
    assert str(doc.issue(("devices", 1, "port"), "bad key", at_key=True)) == "s.yaml:7:5: devices[1].port: bad key"


def test_format_path() -> None:
    assert format_path(("points", 3, "type")) == "points[3].type"
    assert format_path(()) == ""
    assert format_path(("a", "b")) == "a.b"


def test_duplicate_keys_name_both_lines_at_every_depth() -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 4\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "f.yaml")
    assert [str(i) for i in caught.value.issues] == [
        "f.yaml:5:3: duplicate key 'c': first given on line 3; keep one of the two",
        "f.yaml:6:1: duplicate key 'a': first given on line 1; keep one of the two",
    ]


def test_same_key_in_sibling_mappings_is_not_a_duplicate() -> None:
    doc = parse_yaml("- name: a\n- name: b\n", "f.yaml")
    assert doc.data == [{"name": "a"}, {"name": "b"}]


def test_merge_keys_are_not_duplicates_and_are_resolved() -> None:
    doc = parse_yaml("base: &b {port: 502}\ndev:\n  <<: *b\n  name: x\n", "f.yaml")
    assert doc.data["dev"] == {"name": "x", "port": 502}


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("a: [1, 2\nb: 3\n", "f.yaml:2:2:", "expected ',' or ']'"),
        ("a: b: c\n", "f.yaml:1:5:", "mapping values are not allowed in this context; put quotes around a value"),
        ("a:\n\t- 1\n", "f.yaml:2:1:", "indent with spaces, not tabs"),
        ("a: *nowhere\n", "f.yaml:1:4:", "undefined alias"),
        ("a: 'unclosed\n", "f.yaml:2:1:", "not valid YAML"),
    ],
)
def test_malformed_yaml_is_one_positioned_issue(text: str, where: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "f.yaml")
    assert len(caught.value.issues) == 1
    message = str(caught.value.issues[0])
    assert message.startswith(where + " not valid YAML: ")
    assert fragment in message


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^missing\.yaml:1:1: file not found$"):
        load_yaml(tmp_path / "missing.yaml", "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"^bad\.yaml:1:1: cannot read the file: "):
        load_yaml(bad, "bad.yaml")


def test_load_keeps_the_bytes_for_hashing(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes(b"a: 1\n")
    assert load_yaml(f, "s.yaml").source == b"a: 1\n"


_keys = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
    lambda k: k not in ("y", "n", "on", "off", "yes", "no", "true", "false", "null")
)
_leaves = st.one_of(st.integers(-1000, 1000), st.text(alphabet=string.ascii_letters, min_size=1, max_size=6))
_trees = st.recursive(
    st.dictionaries(_keys, _leaves, min_size=1, max_size=4),
    lambda children: st.dictionaries(
        _keys, st.one_of(children, st.lists(children, min_size=1, max_size=3)), max_size=4
    ),
    max_leaves=12,
)


def _walk(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], object]]:
    out: list[tuple[tuple[str | int, ...], object]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(((*path, k), v))
            out += _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, (*path, i))
    return out


@settings(max_examples=40, deadline=None)
@given(_trees)
def test_every_key_position_points_at_that_key(tree: dict[str, object]) -> None:
    import io

    buffer = io.StringIO()
    YAML(typ="rt").dump(tree, buffer)
    text = buffer.getvalue()
    lines = text.splitlines()
    doc = parse_yaml(text, "g.yaml")
    assert doc.data == tree
    for path, value in _walk(tree):
        line, col = doc.key_position(path)
        assert lines[line - 1][col - 1 :].startswith(f"{path[-1]}:")
        if not isinstance(value, dict | list):
            vline, vcol = doc.value_position(path)
            assert lines[vline - 1][vcol - 1 :].lstrip("'").startswith(str(value))
