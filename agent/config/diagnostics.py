"""Turn pydantic's ValidationError into compiler-style issues a field technician can act on.

``issues_from_validation(error, doc, model)`` maps each pydantic error location to ``file:line:col`` through the
``YamlDocument`` side table, rewrites the message as one sentence that says how to fix it, and adds a
did-you-mean (difflib) for unknown keys (against the field names of the model at that path) and for enum and
Literal values. Discriminated-union tags that pydantic puts in locations (``('devices', 0, 'modbus', 'host')``)
are stripped, so paths read ``devices[0].host``. Unknown keys point at the key; bad values at the value; a missing
key at the mapping that lacks it.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent.config.yaml_source import PathKey, YamlDocument, format_path
from agent.errors import ConfigIssue

# What to call a value in "'x' is not <noun>": by enum class, else by field name, else "a valid <field name>".
_ENUM_NOUNS = {
    "DataType": "a data type",
    "RegisterKind": "a register kind",
    "ByteOrder": "a byte order",
    "Role": "a point role",
}
_NOUNS = {
    "protocol": "a protocol",
    "transport": "a bus transport",
    "category": "a device category",
}
# Values of these keys are never echoed in messages (secrets never reach logs).
_SECRET = re.compile(r"password|secret|token|passphrase|private", re.IGNORECASE)

# Human descriptions of the name patterns used in the models.
_PATTERNS = {
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$": "letters, digits, '_', '.' and '-', starting with a letter or digit, "
    "at most 64 characters (no '/', '+', '#' or spaces: names become MQTT topic levels)",
    r"^[A-Za-z0-9_.-]{1,64}$": "letters, digits, '_', '.' and '-', at most 64 characters, no spaces",
    r"^[a-z0-9][a-z0-9_.-]{0,63}$": "lower-case letters, digits, '_', '.' and '-', starting with a letter or digit, "
    "at most 64 characters",
}


@dataclass(frozen=True, slots=True)
class _Resolved:
    path: PathKey  # location with union tags removed
    owner: type[BaseModel] | None  # model that declares the last element (a field name), if any
    annotation: Any  # type expected at the location


def issues_from_validation(error: ValidationError, doc: YamlDocument, model: type[BaseModel]) -> list[ConfigIssue]:
    """Every error in ``error`` as a positioned ConfigIssue (unsorted; ConfigError sorts)."""
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    errors = error.errors(include_url=False)
    for err in errors:
        issue = _issue(err, doc, model)
        if (issue.path, issue.message) not in seen:  # unions can repeat one problem
            seen.add((issue.path, issue.message))
            issues.append(issue)
    # A misspelt key also makes the right key missing: say it once, at the misspelling.
    suggested = {
        f"{i.path.rsplit('.', 1)[0]}.{m.group(1)}" if "." in i.path else m.group(1)
        for i in issues
        if (m := re.search(r"^unknown key '[^']*' \(did you mean '([^']*)'\?\)$", i.message))
    }
    return [i for i in issues if not (i.message.startswith("field required:") and i.path in suggested)]


# Names vendors' manuals and other tools use for our data types: a better guess than spelling similarity.
_ALIASES = {
    "float": "float32",
    "real": "float32",
    "single": "float32",
    "double": "float64",
    "lreal": "float64",
    "short": "int16",
    "int": "int16",
    "word": "uint16",
    "ushort": "uint16",
    "long": "int32",
    "dint": "int32",
    "dword": "uint32",
    "ulong": "uint32",
    "udint": "uint32",
    "boolean": "bool",
    "str": "string",
    "ascii": "string",
}


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option (ties go to the earlier option), or ``""``."""
    alias = _ALIASES.get(word.lower())
    if alias in options:
        return f" (did you mean '{alias}'?)"
    best, best_score = "", 0.6
    for option in options:
        score = difflib.SequenceMatcher(None, word.lower(), option.lower()).ratio()
        if score > best_score:
            best, best_score = option, score
    if not best and len(word) >= 3:  # an abbreviation: usr -> username, addr -> address
        short = [o for o in options if o[:1].lower() == word[:1].lower() and _subsequence(word.lower(), o.lower())]
        best = short[0] if len(short) == 1 else ""
    return f" (did you mean '{best}'?)" if best else ""


def _subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(c in letters for c in short)


class _Hidden:
    """Stands in for a secret's value in messages."""


def _noun(path: PathKey) -> str:
    names = [p.replace("_", " ") for p in path if isinstance(p, str)]
    if not names:
        return "allowed here"
    if names[-1] in _NOUNS:
        return _NOUNS[names[-1]]
    if names[-1] == "type" and len(names) > 1:
        return f"a valid {names[-2]} type"
    return f"a valid {names[-1]}"


def show(value: Any) -> str:
    """A value as the technician wrote it: strings quoted, numbers and lists plain."""
    if isinstance(value, _Hidden):
        return "the value given"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "an empty value"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _issue(err: ErrorDetails, doc: YamlDocument, model: type[BaseModel]) -> ConfigIssue:
    r = _resolve(model, err["loc"], doc.data)
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if any(isinstance(p, str) and _SECRET.search(p) for p in r.path):
        value = _Hidden()
    if kind == "extra_forbidden":
        return doc.issue(r.path, _unknown_key(r, doc), at_key=True)
    if kind == "missing" and r.path and isinstance(r.path[-1], int):  # a fixed-length list: range: [min, max]
        size = len(typing.get_args(_resolve(model, err["loc"][:-1], doc.data).annotation)) or r.path[-1] + 1
        return doc.issue(r.path[:-1], f"expected {size} values, got {r.path[-1]}")
    if kind == "missing":
        return _missing(r, doc)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _bad_tag(r, doc, value)
    if kind in ("enum", "literal_error"):
        options = _options(r.annotation) or _parse_expected(str(ctx.get("expected", "")))
        noun = _ENUM_NOUNS.get(getattr(r.annotation, "__name__", ""), "") or _noun(r.path)
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return doc.issue(r.path, f"{show(value)} is not {noun}; use one of {', '.join(options)}{hint}")
    return doc.issue(r.path, _value_message(kind, value, ctx, err["msg"]))


def _unknown_key(r: _Resolved, doc: YamlDocument) -> str:
    key = str(r.path[-1])
    if r.owner is None:
        return f"unknown key '{key}'; remove it"
    fields = [f.alias or n for n, f in r.owner.model_fields.items()]
    present = _data_at(doc.data, r.path[:-1])
    absent = [f for f in fields if not (isinstance(present, dict) and f in present)]
    hint = did_you_mean(key, absent) or did_you_mean(key, fields)
    if hint:
        return f"unknown key '{key}'{hint}"
    return f"unknown key '{key}'; remove it or use one of {', '.join(fields)}"


def _missing(r: _Resolved, doc: YamlDocument) -> ConfigIssue:
    parent = r.path[:-1]
    last = r.path[-1] if r.path else ""
    message = f"field required: '{last}'"
    if r.owner is not None and isinstance(last, str) and last in r.owner.model_fields:
        description = r.owner.model_fields[last].description
        if description:
            text = f"{description[0].lower()}{description[1:]}"
            message += f": {text}" if "(" in text else f" ({text})"
    line, col = doc.key_position(parent) if parent else (1, 1)
    return ConfigIssue(doc.file, line, col, format_path(r.path), message)


def _bad_tag(r: _Resolved, doc: YamlDocument, value: Any) -> ConfigIssue:
    if not isinstance(value, dict):
        return doc.issue(r.path, f"expected a mapping (key: value lines), got {show(value)}")
    field, tags = _tags(r.annotation)
    given = value.get(field)
    noun = _noun((*r.path, field))
    hint = did_you_mean(str(given), tags) if isinstance(given, str) else ""
    return doc.issue((*r.path, field), f"{show(given)} is not {noun}; use one of {', '.join(tags)}{hint}")


def _value_message(kind: str, value: Any, ctx: dict[str, Any], msg: str) -> str:
    v = show(value)
    if kind in ("int_type", "float_type", "bool_type") and isinstance(value, str) and _plain(value) is not value:
        return f"{v} is quoted, so it is text; write it without quotes"  # the loader reads values as written
    match kind:
        case "value_error" | "assertion_error":
            return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        case "int_parsing" | "int_from_float" | "int_type":
            return f"{v} is not a whole number"
        case "float_parsing" | "float_type":
            return f"{v} is not a number"
        case "bool_parsing" | "bool_type":
            return f"{v} is not true or false"
        case "string_type":
            return f"expected text, got {v}; put quotes around it if it is meant as text"
        case "dict_type" | "model_type" | "model_attributes_type":
            return f"expected a mapping (key: value lines), got {v}"
        case "list_type" | "tuple_type":
            return f"expected a list (lines starting with '- ', or [a, b]), got {v}"
        case "greater_than_equal":
            return f"{v} is too small; the smallest allowed is {show(ctx['ge'])}"
        case "greater_than":
            return f"{v} is too small; it must be more than {show(ctx['gt'])}"
        case "less_than_equal":
            return f"{v} is too large; the largest allowed is {show(ctx['le'])}"
        case "less_than":
            return f"{v} is too large; it must be less than {show(ctx['lt'])}"
        case "too_short":
            return f"needs at least {ctx['min_length']} entries, got {ctx['actual_length']}"
        case "too_long":
            return f"allows at most {ctx['max_length']} entries, got {ctx['actual_length']}"
        case "string_too_short":
            return "must not be empty"
        case "string_too_long":
            return f"is longer than {ctx['max_length']} characters"
        case "string_pattern_mismatch":
            allowed = _PATTERNS.get(str(ctx["pattern"]), f"the pattern {ctx['pattern']}")
            return f"{v} is not allowed here; use {allowed}"
    return f"{v}: {msg[0].lower()}{msg[1:]}" if msg else f"{v} is not valid here"


def _plain(text: str) -> Any:
    """What ``text`` would be unquoted: a number or true/false, else the text itself."""
    if text in ("true", "false"):
        return text == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _resolve(model: type[BaseModel], loc: tuple[str | int, ...], data: Any) -> _Resolved:
    """Walk ``loc`` through the model's types and the data, dropping union tags."""
    tp: Any = model
    owner: type[BaseModel] | None = None
    path: list[str | int] = []
    node = data
    for el in loc:
        tp = _strip(tp)
        members = _union_members(tp)
        if members and not (isinstance(node, dict) and el in node):
            picked = [m for tag, m in members if tag == el]
            if picked or isinstance(el, str):  # a tag (or a smart-union member name): not part of the file path
                tp = picked[0] if picked else Any
                continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            info = tp.model_fields.get(el) if isinstance(el, str) else None
            tp = info.annotation if info is not None else Any
        else:
            owner = None
            args = typing.get_args(tp)
            origin = typing.get_origin(tp)
            if origin is dict and len(args) == 2:
                tp = args[1]
            elif origin is tuple and args and isinstance(el, int) and el < len(args):
                tp = args[el]
            elif origin in (list, tuple, Sequence) and args:
                tp = args[0]
            else:
                tp = Any
        path.append(el)
        node = node.get(el) if isinstance(node, dict) else node[el] if _indexable(node, el) else None
    return _Resolved(tuple(path), owner, _strip(tp))


def _indexable(node: Any, el: str | int) -> bool:
    return isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node)


def _strip(tp: Any) -> Any:
    """Remove Annotated[...] and a ``| None``."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _union_members(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """(tag, model) for each model in a union: the Tag() annotation, else the values of its Literal fields."""
    if not _is_union(tp):
        return []
    out: list[tuple[str, type[BaseModel]]] = []
    for arg in typing.get_args(tp):
        tags = [m.tag for m in getattr(arg, "__metadata__", ()) if hasattr(m, "tag")]
        base = _strip(arg)
        if not (isinstance(base, type) and issubclass(base, BaseModel)):
            continue
        if not tags:
            for info in base.model_fields.values():
                if typing.get_origin(info.annotation) is typing.Literal:
                    tags += [str(a) for a in typing.get_args(info.annotation)]
        out += [(t, base) for t in tags]
    return out


def _tags(tp: Any) -> tuple[str, list[str]]:
    """The discriminator field of a union of models (a Literal field all members have) and its allowed values."""
    models = list(dict.fromkeys(m for _, m in _union_members(tp)))
    if not models:
        return "type", []
    for field in models[0].model_fields:
        if all(
            field in m.model_fields and typing.get_origin(m.model_fields[field].annotation) is typing.Literal
            for m in models
        ):
            values = [str(a) for m in models for a in typing.get_args(m.model_fields[field].annotation)]
            return field, values
    return "type", [t for t, _ in _union_members(tp)]


def _options(tp: Any) -> list[str]:
    if isinstance(tp, type) and issubclass(tp, Enum):
        return [str(m.value) for m in tp]
    if typing.get_origin(tp) is typing.Literal:
        return [str(a) for a in typing.get_args(tp)]
    return []


def _parse_expected(expected: str) -> list[str]:
    return [a or b for a, b in re.findall(r"'((?:[^'\\]|\\.)*)'|([^\s,']+)", expected) if (a or b) != "or"]


def _data_at(data: Any, path: PathKey) -> Any:
    for el in path:
        if isinstance(data, dict):
            data = data.get(el)
        elif _indexable(data, el):
            data = data[el]
        else:
            return None
    return data
