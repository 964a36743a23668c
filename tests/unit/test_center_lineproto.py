"""Line protocol encoding: escaping round-trips through an independent parser; field types; timestamps."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from agent.center.lineproto import escape_key, escape_measurement, format_field, line, timestamp


def _split(text: str, seps: str) -> tuple[str, str, str]:
    """Split at the first unescaped separator; return (head, sep, rest)."""
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in seps:
            return text[:i], text[i], text[i + 1 :]
        i += 1
    return text, "", ""


def _unescape(text: str, special: str = ",= ") -> str:
    """InfluxDB unescapes only ``\\,``, ``\\=`` and ``\\ `` in names, and ``\\"`` and ``\\\\`` in strings."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in special:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _value(text: str) -> tuple[str, str]:
    """One field value (a quoted string is read to its closing unescaped quote) and the text after it."""
    if not text.startswith('"'):
        value, _, _ = _split(text, ", ")
        return value, text[len(value) :]
    i = 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return text[: i + 1], text[i + 1 :]


def parse(text: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """An independent reading of the InfluxDB line-protocol grammar (values of fields kept as raw text)."""
    key, _, rest = _split(text, " ")
    name, sep, tag_text = _split(key, ",")
    tags: dict[str, str] = {}
    while sep:
        pair, sep, tag_text = _split(tag_text, ",")
        k, _, v = _split(pair, "=")
        tags[_unescape(k)] = _unescape(v)
    fields: dict[str, str] = {}
    while True:
        k, _, rest = _split(rest, "=")
        value, rest = _value(rest)
        fields[_unescape(k)] = value
        sep, rest = rest[0], rest[1:]
        if sep == " ":
            break
    return _unescape(name), tags, fields, int(rest)


# A backslash in a name is kept literally by InfluxDB (see test_backslash_in_a_name_is_literal).
names = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\\"), min_size=1, max_size=20)
strings = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)


@given(measurement=names, tags=st.dictionaries(names, names, max_size=4), key=names, text=strings, ts=st.integers(0))
def test_names_and_strings_round_trip_through_escaping(
    measurement: str, tags: dict[str, str], key: str, text: str, ts: int
) -> None:
    encoded = line(measurement, tags, {key: text}, ts)
    assert encoded is not None
    got_name, got_tags, got_fields, got_ts = parse(encoded)
    assert got_name == measurement
    assert got_tags == tags
    raw = got_fields[key]
    assert raw.startswith('"') and raw.endswith('"')
    assert _unescape(raw[1:-1], '"\\') == text
    assert got_ts == ts


def test_documented_escapes() -> None:
    assert escape_measurement("my measure,x") == "my\\ measure\\,x"
    assert escape_key("a=b, c") == "a\\=b\\,\\ c"
    assert format_field('say "hi" \\ there') == '"say \\"hi\\" \\\\ there"'


def test_backslash_in_a_name_is_literal() -> None:
    assert line("m\\x", {"t": "a\\b"}, {"f": 1.0}, 1) == "m\\x,t=a\\b f=1.0 1"


def test_newlines_cannot_be_carried_and_become_spaces() -> None:
    encoded = line("m", {"t": "a\nb"}, {"f": "x\r\ny"}, 1)
    assert encoded == 'm,t=a\\ b f="x  y" 1'


def test_field_types() -> None:
    assert format_field(True) == "t"
    assert format_field(False) == "f"
    assert format_field(3) == "3i"
    assert format_field(2.5) == "2.5"
    assert format_field(1e300) == "1e+300"
    assert format_field(math.nan) is None
    assert format_field(math.inf) is None


def test_empty_tags_and_missing_fields_are_left_out() -> None:
    assert line("m", {"b": "2", "a": "1", "c": ""}, {"v": 1.0, "n": None, "x": math.nan}, 5) == "m,a=1,b=2 v=1.0 5"
    assert line("m", {"a": "1"}, {"v": None, "x": math.inf}, 5) is None


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_timestamp_is_deterministic_and_consistent_across_precisions(ts: float) -> None:
    ns = timestamp(ts, "ns")
    assert ns == timestamp(float(ts), "ns")
    assert ns % 1000 == 0
    assert abs(ns / 1e9 - ts) <= 1e-6
    assert timestamp(ts, "us") == ns // 1000
    assert abs(timestamp(ts, "ms") - ns / 1e6) <= 0.5
    assert abs(timestamp(ts, "s") - ns / 1e9) <= 0.5
