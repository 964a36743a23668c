"""YAML loading that remembers where every value came from.

``load_yaml(path, display)`` reads one file with ruamel.yaml (round-trip mode) and returns a ``YamlDocument``: the
content as plain ``dict``/``list``/scalars (pydantic never sees ruamel types) plus a side table of 1-based
``(line, col)`` positions for every mapping key, mapping value and sequence item, keyed by the path tuple
(``("points", 3, "type")``). Problems are raised as ``ConfigError``:

- malformed YAML: one issue at the position the parser stopped, never a traceback;
- duplicate keys: one issue per duplicate, at the later key, naming the line of the first (YAML says keys are
  unique; silently keeping one of the two is what we refuse to do).

``display`` is the file name used in messages (as the user gave it, or relative), so errors read
``site.yaml:12:5: ...``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from agent.errors import ConfigError, ConfigIssue

PathKey = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, column


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One parsed file: plain data plus where each part of it was written."""

    file: str
    data: Any
    keys: Mapping[PathKey, Position]  # position of the key of a mapping entry
    values: Mapping[PathKey, Position]  # position of a mapping value or sequence item
    source: bytes = b""  # the file as read, for hashing

    def value_position(self, path: PathKey) -> Position:
        """Where the value at ``path`` is written, or its nearest written ancestor (1:1 for the root)."""
        return _nearest(self.values, path)

    def key_position(self, path: PathKey) -> Position:
        """Where the key of the entry at ``path`` is written (sequence items: the item), else its nearest ancestor."""
        if path in self.keys:
            return self.keys[path]
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
    """Parse ``path``; raise ConfigError for unreadable files, malformed YAML and duplicate keys."""
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
    """Parse YAML text (see ``load_yaml``)."""
    yaml = YAML(typ="rt")
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as e:
        raise ConfigError([_syntax_issue(e, display)]) from None
    except YAMLError as e:
        raise ConfigError([ConfigIssue(display, 1, 1, "", f"not valid YAML: {e}")]) from None
    duplicates: list[ConfigIssue] = []
    if node is not None:
        _find_duplicates(node, display, duplicates)
    if duplicates:
        raise ConfigError(duplicates)
    try:
        raw = yaml.constructor.construct_document(node) if node is not None else None  # no second parse
    except MarkedYAMLError as e:  # e.g. an undefined alias or tag, found only when constructing
        raise ConfigError([_syntax_issue(e, display)]) from None
    except YAMLError as e:
        raise ConfigError([ConfigIssue(display, 1, 1, "", f"not valid YAML: {e}")]) from None
    keys: dict[PathKey, Position] = {}
    values: dict[PathKey, Position] = {(): (1, 1)}
    data = _plain(raw, (), keys, values)
    return YamlDocument(display, data, keys, values, source or text.encode("utf-8"))


def _syntax_issue(e: MarkedYAMLError, display: str) -> ConfigIssue:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = e.problem or e.context or "malformed YAML"
    message = f"not valid YAML: {problem}"
    if e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} on line {e.context_mark.line + 1})"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    return ConfigIssue(display, line, col, "", message)


def _find_duplicates(node: Node, display: str, out: list[ConfigIssue]) -> None:
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                name = str(key.value)
                line = key.start_mark.line + 1
                if name in seen:
                    out.append(
                        ConfigIssue(
                            display,
                            line,
                            key.start_mark.column + 1,
                            "",
                            f"duplicate key '{name}': first given on line {seen[name]}; keep one of the two",
                        )
                    )
                else:
                    seen[name] = line
            _find_duplicates(value, display, out)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _find_duplicates(item, display, out)


def _plain(value: Any, path: PathKey, keys: dict[PathKey, Position], values: dict[PathKey, Position]) -> Any:
    """Convert ruamel's round-trip types to plain Python, recording positions as we go."""
    if isinstance(value, CommentedMap):
        out: dict[Any, Any] = {}
        for k in value:
            key = _scalar(k)
            child: PathKey = (*path, key if isinstance(key, str | int) else str(key))
            own = k in value.lc.data  # merged (<<) keys have no position of their own
            if own:
                kl, kc = value.lc.key(k)
                vl, vc = value.lc.value(k)
                keys[child] = (kl + 1, kc + 1)
                values[child] = (vl + 1, vc + 1)
            out[key] = _plain(value[k], child, keys, values)
        return out
    if isinstance(value, CommentedSeq):
        items: list[Any] = []
        for i, item in enumerate(value):
            child = (*path, i)
            if i in value.lc.data:
                il, ic = value.lc.item(i)
                values[child] = (il + 1, ic + 1)
            items.append(_plain(item, child, keys, values))
        return items
    if isinstance(value, dict):
        return {_scalar(k): _plain(v, (*path, str(k)), keys, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, (*path, i), keys, values) for i, v in enumerate(value)]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    # Order matters: ruamel's ScalarBoolean subclasses int, and bool subclasses int.
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, ScalarBoolean):
        return bool(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime.date):
        return value
    return str(value)  # tagged scalars and other exotic types: let the model reject the text
