"""YAML loading that remembers where every value came from, and refuses input built to hurt the loader.

``load_yaml(path, display)`` reads one file and returns a ``YamlDocument``: the content as plain
``dict``/``list``/scalars plus where each key, value and sequence item was written (1-based ``(line, col)``),
looked up by path tuple (``("points", 3, "type")``). Problems are raised as ``ConfigError``, each positioned:

- malformed YAML: one issue at the position the parser stopped;
- duplicate keys: one issue per duplicate, at the later key, naming the line of the first (YAML says keys are
  unique; silently keeping one of the two is what we refuse to do);
- tags other than YAML's plain types (``!!python/object/apply``, ``!custom``, ``!!binary``...): a config file
  holds text, numbers, true/false, lists and mappings, nothing that constructs objects;
- nesting deeper than ``MAX_DEPTH`` lists/mappings (a real site file needs fewer than ten);
- aliases (``*name``) that repeat more than ``MAX_ALIAS_VALUES`` values, or more values than the file writes
  itself when it is larger ("billion laughs"), an alias used inside the value it names, an undefined alias;
- more than one document in the file.

Scalars follow the YAML 1.2 core schema, as ruamel.yaml reads them: ``true``/``false`` (not ``yes``/``on``),
``null``/``~``/empty, decimal, ``0x``, ``0o``, ``0b`` integers (``_`` allowed), floats with ``.inf``/``.nan``;
everything else, dates included, is text. Merge keys (``<<: *defaults``) are resolved; merged keys keep no
position of their own (their mapping's is used).

Why not a YAML library's own loader: the event stream of libyaml (through PyYAML's C parser; its pure-Python
parser where the C one is not installed) is read once, building the data and a compact position tree directly.
The round-trip loader of ruamel.yaml needed ~0.6 ms and ~12 KB per profile point (66 s and 1.1 GB for 100,000
points); this needs a few microseconds and a few hundred bytes (``tests/benchmarks/bench_config.py``). Aliases
share one object instead of copying it, so a bomb is refused before anything is expanded.

``display`` is the file name used in messages (as the user gave it, or relative), so errors read
``site.yaml:12:5: ...``.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.errors import ConfigError, ConfigIssue

PathKey = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, column

MAX_DEPTH = 100  # nested lists/mappings; the deepest site section needs about ten
MAX_ALIAS_VALUES = 100_000  # values aliases may repeat, or as many as the file writes itself when it has more

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")} | {"!"}
_LINE = 1 << 32  # a position is packed as line * _LINE + col (both 0-based) in one unsigned 64-bit array slot


class _Positions:
    """Where everything in one document was written, in a few flat arrays: a profile of 100,000 points would
    otherwise leave 100,000 small long-lived objects scattered among its freed raw data, which keeps that memory
    from being reused.

    Mappings and sequences are numbered (``-1``: none). Container ``c`` has the entries ``first[c]`` to
    ``first[c] + count[c] - 1``; entry ``e`` was written at ``key_at[e]`` (its key; a sequence item's own position)
    and ``value_at[e]``, and ``kid[e]`` is the container written there or -1. A mapping's own keys, in order, are
    ``names[name_of[c]]``; for a sequence ``name_of[c]`` is -1. Positions are packed (see ``_LINE``)."""

    __slots__ = ("count", "first", "key_at", "kid", "name_of", "names", "root", "value_at")

    def __init__(self) -> None:
        self.first: array[int] = array("L")
        self.count: array[int] = array("L")
        self.name_of: array[int] = array("l")
        self.names: list[tuple[Any, ...]] = []
        self.key_at: array[int] = array("Q")
        self.value_at: array[int] = array("Q")
        self.kid: array[int] = array("l")
        self.root = -1

    def entry(self, container: int, key: Any) -> int:
        """The entry of ``key`` (a mapping key, or a sequence index) in ``container``, or -1."""
        if container < 0:
            return -1
        n = self.name_of[container]
        if n < 0:
            ok = type(key) is int and 0 <= key < self.count[container]
            return self.first[container] + key if ok else -1
        try:
            return self.first[container] + self.names[n].index(key)
        except ValueError:
            return -1

    def keys_of(self, container: int) -> Iterator[tuple[Any, int]]:
        """(key or index, entry) of each entry of ``container``."""
        first, n = self.first[container], self.name_of[container]
        keys: Any = self.names[n] if n >= 0 else range(self.count[container])
        for i, key in enumerate(keys):
            yield key, first + i


def _unpack(packed: int) -> Position:
    return (packed >> 32) + 1, (packed & (_LINE - 1)) + 1


class _Table(Mapping[PathKey, Position]):
    """Read-only ``path -> position`` view of a document's positions: of keys (``keys=True``) or of values."""

    def __init__(self, positions: _Positions, keys: bool) -> None:
        self._positions = positions
        self._keys = keys

    def __getitem__(self, path: PathKey) -> Position:
        if not path:
            if self._keys:
                raise KeyError(path)
            return (1, 1)
        at = self._positions
        container = at.root
        for part in path[:-1]:
            e = at.entry(container, part)
            if e < 0:
                raise KeyError(path)
            container = at.kid[e]
        e = at.entry(container, path[-1])
        if e < 0:
            raise KeyError(path)
        return _unpack(at.key_at[e] if self._keys and at.name_of[container] >= 0 else at.value_at[e])

    def __iter__(self) -> Iterator[PathKey]:
        at = self._positions
        if not self._keys:
            yield ()
        stack: list[tuple[PathKey, int]] = [((), at.root)] if at.root >= 0 else []
        while stack:
            prefix, container = stack.pop()
            if self._keys and at.name_of[container] < 0:  # sequence items have no key, but may hold keys
                stack += [((*prefix, key), at.kid[e]) for key, e in at.keys_of(container) if at.kid[e] >= 0]
                continue
            for key, e in at.keys_of(container):
                yield (*prefix, key)
                if at.kid[e] >= 0:
                    stack.append(((*prefix, key), at.kid[e]))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One parsed file: plain data plus where each part of it was written."""

    file: str
    data: Any
    keys: Mapping[PathKey, Position]  # position of the key of a mapping entry
    values: Mapping[PathKey, Position]  # position of a mapping value or sequence item; () -> (1, 1)
    source: bytes = b""  # the file as read (large profiles drop it once loaded: ``digest`` stays)
    digest: bytes = b""  # sha256 of ``source``, for the config hash

    def value_position(self, path: PathKey) -> Position:
        """Where the value at ``path`` is written, or its nearest written ancestor (1:1 for the root)."""
        return _nearest(self.values, path)

    def key_position(self, path: PathKey) -> Position:
        """Where the key of the entry at ``path`` is written (sequence items: the item), else its nearest ancestor."""
        found = self.keys.get(path)
        if found is not None:
            return found
        return _nearest(self.values, path)

    def issue(self, path: PathKey, message: str, *, at_key: bool = False, severity: str = "error") -> ConfigIssue:
        line, col = self.key_position(path) if at_key else self.value_position(path)
        return ConfigIssue(self.file, line, col, format_path(path), message, severity)


def format_path(path: PathKey) -> str:
    """``("points", 3, "type")`` -> ``points[3].type``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _nearest(table: Mapping[PathKey, Position], path: PathKey) -> Position:
    for end in range(len(path), 0, -1):
        found = table.get(path[:end])
        if found is not None:
            return found
    return (1, 1)


def load_yaml(path: Path, display: str) -> YamlDocument:
    """Parse ``path``; raise ConfigError for unreadable files and every problem ``parse_yaml`` finds."""
    try:
        source = path.read_bytes()
        text = source.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(display, 1, 1, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError([ConfigIssue(display, 1, 1, "", f"cannot read the file: {reason}")]) from None
    return parse_yaml(text, display, source)


def parse_yaml(text: str, display: str, source: bytes = b"") -> YamlDocument:
    """Parse YAML text (see the module docstring for what is refused)."""
    builder = _Builder(display)
    parser = _Parser(text)
    try:
        data, where = builder.build(parser.get_event)
    except yaml.MarkedYAMLError as e:
        raise ConfigError([_syntax_issue(e, display, text)]) from None
    except yaml.reader.ReaderError as e:
        line, col = _offset_position(text, e.position)
        raise ConfigError([ConfigIssue(display, line, col, "", f"not valid YAML: {e.reason}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([ConfigIssue(display, 1, 1, "", f"not valid YAML: {e}")]) from None
    finally:
        parser.dispose()
    if builder.issues:
        raise ConfigError(builder.issues)
    source = source or text.encode("utf-8")
    return YamlDocument(
        display, data, _Table(where, True), _Table(where, False), source, hashlib.sha256(source).digest()
    )


def _offset_position(text: str, offset: int) -> Position:
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _syntax_issue(e: yaml.MarkedYAMLError, display: str, text: str) -> ConfigIssue:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = e.problem or e.context or "malformed YAML"
    if "maximum nesting depth" in problem:  # libyaml's own limit (1000), met while reading ahead in [ or {
        return ConfigIssue(display, line, col, "", _too_deep())
    message = f"not valid YAML: {problem}"
    if e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} on line {e.context_mark.line + 1})"
    if mark is not None and "\t" in _line_text(text, mark.line)[: mark.column + 1]:
        message += "; indent with spaces, not tabs"
    elif problem.startswith("mapping values are not allowed"):
        message += "; put quotes around a value that contains ': '"
    return ConfigIssue(display, line, col, "", message)


def _too_deep() -> str:
    return (
        f"lists and mappings are nested more than {MAX_DEPTH} deep here; a config file needs fewer than ten "
        "levels (is this the right file?)"
    )


def _line_text(text: str, index: int) -> str:
    lines = text.split("\n", index + 1)
    return lines[index] if index < len(lines) else ""


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


def _pack(mark: Any) -> int:
    return int(mark.line * _LINE + mark.column)


class _Builder:
    """Events -> (plain data, position tree), in one pass. Iterative: nesting costs no Python stack."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.issues: list[ConfigIssue] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, container or -1, size)
        self.positions = _Positions()
        self.open_anchors: set[str] = set()
        self.written = 0  # values written in the file
        self.repeated = 0  # values repeated by aliases
        self.strings: dict[str, str] = {}  # one object per distinct text: keys and names repeat a lot
        self.name_numbers: dict[tuple[Any, ...], int] = {}  # each distinct key list of mappings, numbered

    def problem(self, packed: int, message: str) -> None:
        line, col = _unpack(packed)
        self.issues.append(ConfigIssue(self.display, line, col, "", message))

    def stop(self, packed: int, message: str) -> _Stop:
        self.problem(packed, message)
        return _Stop()

    def build(self, get_event: Callable[[], Any]) -> tuple[Any, _Positions]:
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
                packed = mark.line * _LINE + mark.column
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
                packed = _pack(event.start_mark)
                if len(stack) >= MAX_DEPTH:
                    raise self.stop(packed, _too_deep())
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
                packed = _pack(event.start_mark)
                self.written = written
                value, where, size = self._alias(event.anchor, packed)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.stop(
                        _pack(event.start_mark),
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
