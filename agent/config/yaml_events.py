"""Build a YAML document's plain data and positions from a parser's event stream, refusing what hurts a loader.

``DocumentBuilder(display).build(get_event)`` reads events (PyYAML's, from libyaml or its pure-Python parser)
until the end of the stream and returns ``(data, positions)``; problems are collected in ``issues``. See
``agent.config.yaml_source`` for what is refused and how scalars are read. One pass, no recursion: nesting
costs no Python stack, aliases share the value they name (counted, never copied).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable
from typing import Any

import yaml

from agent.config.yaml_positions import LINE, Positions, pack, unpack
from agent.errors import ConfigIssue

MAX_DEPTH = 100  # nested lists/mappings; the deepest site section needs about ten
MAX_ALIAS_VALUES = 100_000  # values aliases may repeat, or as many as the file writes itself when it has more
_YAML = "tag:yaml.org,2002:"


def too_deep() -> str:
    """The message for nesting past ``MAX_DEPTH``."""
    return (
        f"lists and mappings are nested more than {MAX_DEPTH} deep here; a config file needs fewer than ten "
        "levels (is this the right file?)"
    )


class _Stop(Exception):
    """A limit was hit: the builder's issues say which; nothing after it is read."""


_NO_KEY = object()  # a mapping waiting for its next key
_MERGE = object()  # the key of a ``<<`` entry
_MERGE_TEXT = object()  # what ``_resolve`` returns for a plain ``<<``


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = (
        "anchor",
        "data",
        "is_map",
        "key",
        "key_at",
        "keys_at",
        "kids",
        "merges",
        "names",
        "size",
        "start",
        "values_at",
    )

    def __init__(self, is_map: bool, anchor: str | None, start: int) -> None:
        self.is_map = is_map
        self.anchor = anchor
        self.start = start  # packed position of the container itself
        self.data: Any = {} if is_map else []
        self.keys_at: array[int] = array("Q")  # mappings only: where each own key was written
        self.values_at: array[int] = array("Q")  # where each value (or item) was written
        self.kids: array[int] = array("l")  # the container written as each value, or -1
        self.names: list[Any] = []
        self.merges: list[tuple[Any, int]] = []  # (merged value, packed position of the <<)
        self.key: Any = _NO_KEY
        self.key_at = 0
        self.size = 1  # values this container expands to, itself included


class DocumentBuilder:
    """Events -> (plain data, position tree), in one pass. Iterative: nesting costs no Python stack."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.issues: list[ConfigIssue] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, container or -1, size)
        self.positions = Positions()
        self.open_anchors: set[str] = set()
        self.written = 0  # values written in the file
        self.repeated = 0  # values repeated by aliases
        self.strings: dict[str, str] = {}  # one object per distinct text: keys and names repeat a lot
        self.name_numbers: dict[tuple[Any, ...], int] = {}  # each distinct key list of mappings, numbered

    def problem(self, packed: int, message: str) -> None:
        line, col = unpack(packed)
        self.issues.append(ConfigIssue(self.display, line, col, "", message))

    def stop(self, packed: int, message: str) -> _Stop:
        self.problem(packed, message)
        return _Stop()

    def build(self, get_event: Callable[[], Any]) -> tuple[Any, Positions]:
        try:
            return self._build(get_event), self.positions
        except _Stop:
            return None, self.positions

    def _build(self, get_event: Callable[[], Any]) -> Any:
        """One loop over the events, hot for large files: locals only, the common cases first."""
        stack: list[_Frame] = []
        top: _Frame | None = None  # stack[-1]
        root: Any = None
        documents = written = 0
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        seq_start, map_start = yaml.SequenceStartEvent, yaml.MappingStartEvent
        seq_end, map_end, stream_end = yaml.SequenceEndEvent, yaml.MappingEndEvent, yaml.StreamEndEvent
        intern = self.strings.setdefault
        constant, miss, numeric = _CONSTANTS.get, _NO_KEY, _NUMERIC_START
        no_key = _NO_KEY
        while True:
            event = get_event()
            kind = type(event)
            where = -1
            if kind is scalar_event:
                mark = event.start_mark
                packed = mark.line * LINE + mark.column
                text = event.value
                if event.tag is None and event.implicit[0]:
                    value = constant(text, miss)
                    if value is miss:
                        value = _number(text) if text[0] in numeric else text
                    elif value is _MERGE_TEXT:
                        value = _MERGE if top is not None and top.is_map and top.key is no_key else "<<"
                elif event.tag is None or event.tag in _TEXT_TAGS:
                    value = text
                else:
                    value = self._tagged(event.tag, text, packed)
                if type(value) is str:
                    value = intern(value, value)  # units, kinds, types: one object each, however many points
                size = 1
                written += 1
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, -1, 1)
                if top is not None and top.is_map and top.key is no_key:  # a key: the common case first
                    top.key, top.key_at = value, packed
                    top.size += 1
                    continue
            elif kind is map_start or kind is seq_start:
                packed = pack(event.start_mark)
                if len(stack) >= MAX_DEPTH:
                    raise self.stop(packed, too_deep())
                tag = event.tag
                if tag is not None and tag != "!" and tag != (_MAP_TAG if kind is map_start else _SEQ_TAG):
                    self.problem(packed, _tag_message(tag))
                top = _Frame(kind is map_start, event.anchor, packed)
                stack.append(top)
                written += 1
                if event.anchor is not None:
                    self.open_anchors.add(event.anchor)
                continue
            elif kind is map_end or kind is seq_end:
                frame = stack.pop()
                top = stack[-1] if stack else None
                value, where = self._finish(frame)
                packed, size = frame.start, frame.size
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = (value, where, size)
            elif kind is alias_event:
                packed = pack(event.start_mark)
                self.written = written
                value, where, size = self._alias(event.anchor, packed)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.stop(
                        pack(event.start_mark),
                        "a second YAML document starts here; a config file holds one: remove this '---' or what "
                        "follows it",
                    )
                continue
            elif kind is stream_end:
                self.written = written
                return root
            else:
                continue
            # A finished value: it belongs to the enclosing container, or is the document.
            if top is None:
                root, self.positions.root = value, where
                continue
            top.size += size
            if not top.is_map:
                top.data.append(value)
                top.values_at.append(packed)
                top.kids.append(where)
            elif top.key is no_key:  # a list, mapping or alias as a key
                if where >= 0:
                    self.problem(
                        packed, "a key must be plain text or a number, not a list or mapping; write it as text"
                    )
                    value = f"<{'list' if isinstance(value, list) else 'mapping'} key>"
                top.key, top.key_at = value, packed
            else:
                self._entry(top, value, where, packed)

    def _alias(self, name: str, packed: int) -> tuple[Any, int, int]:
        if name in self.open_anchors:
            raise self.stop(
                packed,
                f"alias *{name} is used inside the value it names, which would contain itself; write the value out",
            )
        target = self.anchors.get(name)
        if target is None:
            raise self.stop(packed, f"not valid YAML: found undefined alias *{name}; define it first with &{name}")
        self.repeated += target[2]
        allowed = max(MAX_ALIAS_VALUES, self.written)
        if self.repeated > allowed:
            raise self.stop(
                packed,
                f"aliases (*name) repeat more than {allowed} values (the file itself writes {self.written}), as a "
                "'billion laughs' attack does; write the values out or use fewer aliases",
            )
        return target

    def _entry(self, parent: _Frame, value: Any, where: int, packed: int) -> None:
        key = parent.key
        parent.key = _NO_KEY
        if key is _MERGE:
            parent.merges.append((value, parent.key_at))
            return
        data = parent.data
        if key in data:
            first = (parent.keys_at[parent.names.index(key)] >> 32) + 1
            self.problem(parent.key_at, f"duplicate key '{key}': first given on line {first}; keep one of the two")
            return
        data[key] = value
        parent.names.append(key)
        parent.keys_at.append(parent.key_at)
        parent.values_at.append(packed)
        parent.kids.append(where)

    def _finish(self, frame: _Frame) -> tuple[Any, int]:
        """The container's value, and its number once its entries are in the document's positions."""
        at = self.positions
        container = len(at.first)
        at.first.append(len(at.value_at))
        at.count.append(len(frame.values_at))
        at.value_at.extend(frame.values_at)
        at.key_at.extend(frame.keys_at if frame.is_map else frame.values_at)
        at.kid.extend(frame.kids)
        if not frame.is_map:
            at.name_of.append(-1)
            return frame.data, container
        data = frame.data
        for merged, packed in frame.merges:
            for mapping in merged if isinstance(merged, list) else [merged]:
                if not isinstance(mapping, dict):
                    self.problem(
                        packed, "<< merges a mapping (or a list of mappings) into this one, e.g. <<: *defaults"
                    )
                    break
                for k, v in mapping.items():
                    if k not in data:
                        data[k] = v  # no position of its own: its mapping's is used
        names = tuple(frame.names)
        number = self.name_numbers.get(names)
        if number is None:
            number = self.name_numbers[names] = len(at.names)
            at.names.append(names)
        at.name_of.append(number)
        return data, container

    def _tagged(self, tag: str, text: str, packed: int) -> Any:
        """A scalar with an explicit tag: YAML's plain types only."""
        wanted = {_YAML + "int": int, _YAML + "float": float, _YAML + "bool": bool, _YAML + "null": type(None)}
        if tag not in wanted:
            self.problem(packed, _tag_message(tag))
            return text
        value = _resolve(text)
        if wanted[tag] is float and type(value) is int:
            return float(value)
        if type(value) is not wanted[tag]:
            self.problem(packed, f"'{text}' is not a valid {_short_tag(tag)}; remove the tag or fix the value")
            return text
        return value


_SEQ_TAG, _MAP_TAG = _YAML + "seq", _YAML + "map"
_TEXT_TAGS = frozenset(("!", _YAML + "str"))


def _short_tag(tag: str) -> str:
    return f"!!{tag[len(_YAML) :]}" if tag.startswith(_YAML) else tag


def _tag_message(tag: str) -> str:
    return (
        f"tag {_short_tag(tag)} is not allowed: a config file holds plain values only (text, numbers, true/false, "
        "lists, mappings); remove the tag"
    )


# YAML 1.2 core schema, as ruamel.yaml resolves plain scalars.
_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    "<<": _MERGE_TEXT,
}
_NUMERIC_START = frozenset("0123456789+-.")
_INT = re.compile(r"[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9_]+)")
_FLOAT = re.compile(
    r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
)


def _number(text: str) -> Any:
    """A plain scalar starting like a number: int, float, or the text itself."""
    try:
        if _INT.fullmatch(text):
            digits = text.replace("_", "")
            body = digits.lstrip("+-")
            return int(digits, 0) if body[:2] in ("0x", "0o", "0b") else int(digits, 10)
        if _FLOAT.fullmatch(text):
            return float(text.replace("_", ""))
    except ValueError:
        pass  # e.g. "+_": digits-only by the pattern, no number once the underscores are gone
    return text


def _resolve(text: str) -> Any:
    """A plain scalar's value: bool, None, int, float, or the text itself (``<<`` gives ``_MERGE_TEXT``)."""
    value = _CONSTANTS.get(text, _NO_KEY)
    if value is not _NO_KEY:
        return value
    return _number(text) if text[0] in _NUMERIC_START else text
