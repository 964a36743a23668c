"""``energy-agent reference kpi|site|profile``: every key of a config section, generated from its pydantic models.

Prints Markdown: one table per model (key, type, default, what it is), in the order a reader meets them, each
nested model under its dotted path (``kpi.lines[].fuels[]``). ``docs/reference/kpi.md`` is this command's output
for ``kpi``, kept up to date by a test; like Telegraf's per-plugin docs, a technician reads what each key takes
without reading code. Nothing here is written by hand: a new field with a ``description`` is documented at once.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_VARIANT = "|"  # suffix mark: this model is one of several variants of a union
NAME = "reference"
HELP = "print every key of the kpi section (or the site file, or a profile) with type, default and meaning"


def _sections() -> dict[str, tuple[str, type[BaseModel], frozenset[str]]]:
    """Section -> (the path its keys sit under, model, keys documented elsewhere)."""
    from agent.config.kpi import KpiSectionConfig
    from agent.config.profile import ProfileConfig
    from agent.config.site import SiteConfig

    return {
        "kpi": ("kpi", KpiSectionConfig, frozenset()),
        "site": ("", SiteConfig, frozenset({"kpi"})),
        "profile": ("", ProfileConfig, frozenset()),
    }


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "section",
        choices=["kpi", "site", "profile", "dlt645"],
        help="what to document (dlt645: the DL/T 645 profile keys and data identifiers)",
    )


def run(args: argparse.Namespace) -> int:
    if args.section == "dlt645":
        from agent.cli._dlt645 import catalogue_markdown

        print(catalogue_markdown(), end="")
        return 0
    print(markdown(args.section), end="")
    return 0


def markdown(section: str) -> str:
    path, model, elsewhere = _sections()[section]
    title = (
        f"`{path}:` section of the site file" if path else {"site": "Site file", "profile": "Device profile"}[section]
    )
    return markdown_of(model, title, section, path, elsewhere)


def markdown_of(
    model: type[BaseModel], title: str, section: str, path: str = "", elsewhere: frozenset[str] = frozenset()
) -> str:
    """Every key of ``model`` and the models under it, as Markdown tables."""
    out = [
        f"# {title}: every key",
        "",
        f"Generated from the config models by `energy-agent reference {section}`; do not edit by hand.",
        "Types: `number` takes integers and decimals, `list of X` is a YAML sequence of X, `[a, b]` a pair;",
        "a key with a default may be left out. Paths: `[]` is any item of a list, `[kind=motor]` an item of that kind.",
        "",
    ]
    paths: dict[type[BaseModel], list[str]] = {}  # each model once, at the first path it is met; its other paths
    queue: list[tuple[str, type[BaseModel]]] = [(path, model)]
    while queue:
        where, current = queue.pop(0)
        if current in paths:
            paths[current].append(where)
            continue
        paths[current] = [where]
        skip = elsewhere if current is model else frozenset()
        for key, info in current.model_fields.items():
            if key not in skip:
                _type(info.annotation, _collect(queue, where, key))
    for documented, found_at in paths.items():
        out += _table(documented, found_at, elsewhere if documented is model else frozenset(), paths, section)
    return "\n".join(out) + "\n"


def _collect(queue: list[tuple[str, type[BaseModel]]], where: str, key: str) -> Callable[[type[BaseModel], str], str]:
    def found(model: type[BaseModel], suffix: str) -> str:
        queue.append((_path(where, key, suffix, model), model))
        return ""

    return found


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _path(where: str, key: str, suffix: str, model: type[BaseModel]) -> str:
    """``kpi.lines[]``; for one of several tagged models ``kpi.equipment[kind=motor]`` or ``auth (type: username)``."""
    base = f"{where}.{key}" if where else key
    kinds = _kinds(model) if suffix.endswith(_VARIANT) else []
    suffix = suffix.removesuffix(_VARIANT)
    if kinds and suffix.endswith("[]"):
        return f"{base}{suffix[:-2]}[{kinds[0][0]}={kinds[0][1]}]"
    if kinds:
        return f"{base}{suffix} ({kinds[0][0]}: {kinds[0][1]})"
    return base + suffix


def _table(
    model: type[BaseModel],
    where: list[str],
    elsewhere: frozenset[str],
    paths: dict[type[BaseModel], list[str]],
    section: str,
) -> list[str]:
    doc = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    lines = [f"## `{where[0] or section}`", ""]
    if doc:
        lines += [doc.replace("``", "`"), ""]
    if len(where) > 1:
        lines += ["Also at " + ", ".join(f"`{w}`" for w in where[1:]) + ".", ""]
    lines += ["| key | type | default | what it is |", "| --- | --- | --- | --- |"]

    def link(m: type[BaseModel], _suffix: str) -> str:
        return f"[{m.__name__.removesuffix('Config')}](#{_anchor(paths[m][0])})"

    for key, info in model.model_fields.items():
        if key in elsewhere:
            lines.append(f"| `{key}` | section | | see `energy-agent reference {key}` |")
            continue
        what = (info.description or "").replace("|", "/")
        lines.append(f"| `{key}` | {_type(info.annotation, link)}{_limits(info)} | {_default(info)} | {what} |")
    return [*lines, ""]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, spaces to -, other punctuation but - and _ dropped."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _kinds(model: type[BaseModel]) -> list[tuple[str, str]]:
    """(key, values) of a model's required tag (``kind: motor``), which tells the variants of a list apart."""
    for key in ("kind", "type", "transport", "protocol"):
        info = model.model_fields.get(key)
        if info is not None and typing.get_origin(info.annotation) is typing.Literal:
            return [(key, "/".join(str(a) for a in typing.get_args(info.annotation)))]
    return []


def _type(annotation: Any, found: Callable[[type[BaseModel], str], str], suffix: str = "") -> str:
    """Readable type; models are linked to their own table (``found`` queues them)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0], found, suffix)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        models = [
            a for a in options if _is_model(typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a)
        ]
        variant = suffix + _VARIANT if len(models) > 1 else suffix  # tagged variants get a table each
        text = " or ".join(_type(a, found, variant) for a in options)
        return text + (" or null" if len(options) < len(args) else "")
    if origin is list:
        return "list of " + _type(args[0], found, suffix + "[]")
    if origin is tuple:
        return "[" + ", ".join(_type(a, found, suffix) for a in args if a is not Ellipsis) + "]"
    if origin is dict:
        return f"map of {_type(args[0], found, suffix)} to {_type(args[1], found, suffix + '.*')}"
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if _is_model(annotation):
        return found(annotation, suffix)
    suffix = suffix.removesuffix(_VARIANT)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    names = {str: "text", float: "number", int: "integer", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _limits(info: FieldInfo) -> str:
    symbols: list[str] = []
    for m in info.metadata:
        for cls, attr, text in ((Gt, "gt", "> "), (Ge, "ge", "≥ "), (Lt, "lt", "< "), (Le, "le", "≤ ")):
            if isinstance(m, cls):
                symbols.append(f"{text}{getattr(m, attr)}")
        if isinstance(m, MinLen):
            symbols.append(f"at least {m.min_length}")
        if isinstance(m, MaxLen):
            symbols.append(f"at most {m.max_length}")
        pattern = getattr(m, "pattern", None)
        if isinstance(pattern, str):
            symbols.append(f"matching `{pattern}`")
    return f", {', '.join(symbols)}" if symbols else ""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]  # none of ours takes the validated data
    elif info.default is PydanticUndefined:
        return "**required**"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(its defaults)"
    if value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ([], {}):
        return "none"
    if value == "":
        return '`""`'
    if isinstance(value, list | tuple):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"
