"""The part of a site file that validates, so checks of one section still run when another part is wrong.

``salvage_site(path) -> Salvaged | None``: the site's ``devices`` and ``kpi`` sections, with every part that fails
validation pruned (the failing key, then, if its model cannot do without it, the list item or key that holds it),
and the profiles those devices use that load cleanly. ``None`` when the file does not parse or nothing survives.

The compile step uses it when the site is refused (``agent.runtime.compile``): the KPI cross-checks run on what
survived, so a mistyped role, an unknown indicator, a formula naming an unknown KPI and a window that does not exist
are reported in one ``validate`` run instead of one round per layer. ``Salvaged.keep`` filters the checks' findings
back to paths of the file as written and drops those a pruned part would explain (a reference to a pruned device or
line, a check at or around a pruned key): nothing is reported that the technician's fix of the first error would
make go away.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config.load import _load_used_profiles  # the loader's own lookup, so both find the same profiles
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.config.yaml_source import PathKey, YamlDocument, load_yaml
from agent.errors import ConfigError

_ROUNDS = 200  # each round prunes at least one node; a site file has far fewer nodes that fail
_PLACEHOLDER = "salvaged"  # stands in for site and gateway, which the KPI checks do not read
_DECLARATIONS = ("lines", "equipment", "demand", "power_factor", "renewable", "balance")


@dataclass(frozen=True, slots=True)
class Salvaged:
    """What validated of a refused site: its devices and kpi section, and the profiles those devices use."""

    site: SiteConfig
    profiles: Mapping[str, ProfileConfig]
    doc: YamlDocument
    pruned: tuple[PathKey, ...]  # paths in the file as written
    _kept: Mapping[PathKey, list[int]] = field(repr=False)  # list path (as written) -> original index of each item

    def keep(self, path: PathKey, message: str) -> PathKey | None:
        """``path`` (into the salvaged site) as written in the file, or None when a pruned part explains it."""
        written = _written(self._kept, path)
        for gone in self.pruned:
            if written[: len(gone)] == gone or gone[: len(written)] == written:
                return None
        if any(ref in message for ref in self._gone_names()):
            return None
        return written

    def _gone_names(self) -> list[str]:
        """How the checks quote a pruned device, line or KPI declaration: ``'name'`` or ``'scope.``."""
        names: list[str] = []
        for gone in self.pruned:
            raw = _at(self.doc.data, gone)
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                continue
            name = raw["name"]
            if gone[:1] == ("devices",) and len(gone) == 2:
                names.append(f"'{name}'")
            elif len(gone) == 3 and gone[:2] == ("kpi", "custom"):
                names.append(f"'{raw.get('scope', 'site')}.{name}'")
            elif len(gone) == 3 and gone[0] == "kpi" and gone[1] in _DECLARATIONS:
                names += [f"'{name}.", f"line '{name}'"]
        return names


def salvage_site(path: Path) -> Salvaged | None:
    """The devices and kpi section of the site at ``path`` that validate (see the module docstring)."""
    try:
        doc = load_yaml(path, str(path))
    except ConfigError:
        return None
    if not isinstance(doc.data, dict):
        return None
    data = {key: copy.deepcopy(doc.data[key]) for key in ("devices", "kpi") if key in doc.data}
    data.update(site=_PLACEHOLDER, gateway=_PLACEHOLDER)
    pruned: list[PathKey] = []
    kept: dict[PathKey, list[int]] = {}
    for _ in range(_ROUNDS):
        try:
            site = SiteConfig.from_document(data)
        except ValidationError as e:
            targets = {_existing(data, tuple(err["loc"])) for err in e.errors(include_url=False)}
            # deepest first, and the items of one list from the last, so pruning one leaves the others' indices
            removed = False
            for target in sorted(targets, key=lambda t: (len(t), t[-1] if t and isinstance(t[-1], int) else 0))[::-1]:
                if not target or target[0] in ("site", "gateway"):
                    return None
                pruned.append(_written(kept, target))
                removed |= _prune(data, kept, target)
            if not removed:
                return None  # an error that pruning cannot take away
            continue
        every, _docs, _paths = _load_used_profiles(path, doc, [])
        profiles = {n: p for n, p in every.items() if isinstance(p, ProfileConfig)}
        return Salvaged(site, profiles, doc, tuple(pruned), kept)
    return None


def _existing(data: Any, loc: tuple[str | int, ...]) -> PathKey:
    """The part of a pydantic error location that exists in ``data``: union tags skipped, a missing key dropped."""
    path: list[str | int] = []
    node = data
    for i, el in enumerate(loc):
        if _has(node, el):
            node = node[el]
        elif isinstance(el, str) and i < len(loc) - 1 and isinstance(node, dict | list):
            continue  # a union member's tag, e.g. ("devices", 0, "modbus", "port")
        else:
            break
        path.append(el)
    return tuple(path)


def _has(node: Any, el: str | int) -> bool:
    if isinstance(node, dict):
        return el in node
    return isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node)


def _prune(data: Any, kept: dict[PathKey, list[int]], target: PathKey) -> bool:
    """Remove the node at ``target`` (a path into the current data), recording list indices as written."""
    parent = _at(data, target[:-1])
    last = target[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and _has(parent, last):
        written = _written(kept, target[:-1])
        indices = kept.setdefault(written, list(range(len(parent))))
        del parent[last]
        del indices[last]
        return True
    return False


def _written(kept: Mapping[PathKey, list[int]], path: PathKey) -> PathKey:
    """A path into the pruned data as a path into the file: list indices mapped back to the items as written."""
    out: list[str | int] = []
    for el in path:
        indices = kept.get(tuple(out))
        if isinstance(el, int) and indices is not None and 0 <= el < len(indices):
            el = indices[el]
        out.append(el)
    return tuple(out)


def _at(data: Any, path: PathKey) -> Any:
    for el in path:
        if isinstance(data, dict):
            data = data.get(el)
        elif isinstance(data, list) and isinstance(el, int) and 0 <= el < len(data):
            data = data[el]
        else:
            return None
    return data
