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
parser where the C one is not installed) is read once (``agent.config.yaml_events``), building the data and its
positions (``agent.config.yaml_positions``: flat arrays, not an object per mapping) directly.
The round-trip loader of ruamel.yaml needed ~0.6 ms and ~12 KB per profile point (66 s and 1.1 GB for 100,000
points); this needs a few microseconds and a few hundred bytes (``tests/benchmarks/bench_config.py``). Aliases
share one object instead of copying it, so a bomb is refused before anything is expanded.

``display`` is the file name used in messages (as the user gave it, or relative), so errors read
``site.yaml:12:5: ...``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.config.yaml_events import MAX_ALIAS_VALUES, MAX_DEPTH, DocumentBuilder, too_deep
from agent.config.yaml_positions import PathKey, Position, PositionTable
from agent.errors import ConfigError, ConfigIssue

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "PathKey",
    "Position",
    "YamlDocument",
    "format_path",
    "load_yaml",
    "parse_yaml",
]

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


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
    builder = DocumentBuilder(display)
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
        display, data, PositionTable(where, True), PositionTable(where, False), source, hashlib.sha256(source).digest()
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
        return ConfigIssue(display, line, col, "", too_deep())
    message = f"not valid YAML: {problem}"
    if e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} on line {e.context_mark.line + 1})"
    if mark is not None and "\t" in _line_text(text, mark.line)[: mark.column + 1]:
        message += "; indent with spaces, not tabs"
    elif problem.startswith("mapping values are not allowed"):
        message += "; put quotes around a value that contains ': '"
    return ConfigIssue(display, line, col, "", message)


def _line_text(text: str, index: int) -> str:
    lines = text.split("\n", index + 1)
    return lines[index] if index < len(lines) else ""
