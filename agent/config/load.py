"""Load a site file and its device profiles into validated models, or fail with every problem at once.

Public API::

    load_profile(path) -> ProfileConfig              ConfigError with all issues of that file
    load_profile_checked(path) -> (ProfileConfig, warnings)
    load_site(path) -> LoadedSite                    ConfigError with all issues of the site AND its profiles
    shipped_profile_dir() -> Path                    the repo's device_profiles/ (or the installed one beside the
                                                     venv), or $ENERGY_AGENT_PROFILES

Secret files the site names (password files, private keys) that other users can read draw a warning at the key
naming them (``agent.config.secret_files``). A ``ConfigError`` carries errors and warnings together, sorted; a successful load returns the warnings in
``LoadedSite.warnings``. File names in messages are as the caller gave the site path, with profile folders
joined to its folder, so ``energy-agent validate site.yaml`` prints ``profiles/acme.yaml:12:5: ...``.

Profile lookup: a device's ``profile: <name>`` is searched in the site's ``profile_dirs`` (relative to the site
file, in order) and then in the shipped library; the first folder that has the name wins, so a site can override
a shipped profile. A profile's name is its ``profile:`` key (files are conventionally ``<name>.yaml``); every
``*.yaml`` in those folders is indexed, and two files in one folder claiming a name the site uses is an error.

What needs the Modbus planner or the KPI tables (read plans, serial bus timing, the ``kpi`` section's references)
is checked by the compile step, ``agent.runtime.compile.compile_site``, which every command uses.

Section hooks: after the site and its profiles validated and the built-in cross-checks ran without errors, each
of ``agent.config.mqtt``, ``agent.config.spool``, ``agent.config.opcua`` (and ``agent.config.monitoring`` if
present) that defines

    def check(site: SiteConfig, profiles: Mapping[str, ProfileConfig]) -> list[tuple[tuple[str | int, ...], str]]

is called; each ``(path, message)`` becomes an error positioned at that path of the site file (path as pydantic
gives it, without union tags, e.g. ``("mqtt", "tls", "ca_file")``; the nearest written ancestor is used when the
key itself is absent). Messages should be one sentence saying how to fix it. A hook must not do I/O.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import agent
from agent.config.base import document_json
from agent.config.checks import check_profile, check_site
from agent.config.diagnostics import did_you_mean, issues_from_validation
from agent.config.dlt645 import Dlt645DeviceConfig, Dlt645ProfileConfig
from agent.config.profile import ProfileConfig
from agent.config.secret_files import readable_secret_files
from agent.config.site import SiteConfig
from agent.config.yaml_source import PathKey, YamlDocument, load_yaml
from agent.errors import ConfigError, ConfigIssue

ENV_PROFILES = "ENERGY_AGENT_PROFILES"
SECTION_MODULES = (  # the kpi section is checked by the compile step (agent.runtime.compile), which may import kpi
    "agent.config.mqtt",
    "agent.config.spool",
    "agent.config.opcua",
    "agent.config.monitoring",
)
_NAME_LINE = re.compile(r"""^profile:[ \t]*(['"]?)([^'"\s#]+)\1[ \t]*(?:#.*)?$""", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LoadedSite:
    """A valid site with the profiles its devices use."""

    path: Path
    site: SiteConfig
    profiles: Mapping[str, ProfileConfig]  # by profile name: the Modbus profiles the site uses
    profile_paths: Mapping[str, Path]
    warnings: tuple[ConfigIssue, ...]
    config_hash: str  # sha256 hex over the site file and the used profiles, stable across runs
    _site_doc: YamlDocument = field(repr=False, compare=False)
    _profile_docs: Mapping[str, YamlDocument] = field(repr=False, compare=False)
    dlt645_profiles: Mapping[str, Dlt645ProfileConfig] = field(default_factory=dict)  # protocol: dlt645 ones

    def position(self, path: PathKey) -> tuple[str, int, int]:
        """(file, line, col) of the value at ``path`` in the site file, or of its nearest written ancestor."""
        line, col = self._site_doc.value_position(path)
        return self._site_doc.file, line, col

    def profile_position(self, profile: str, path: PathKey) -> tuple[str, int, int]:
        """(file, line, col) of the value at ``path`` (e.g. ``("points", 3, "address")``) in a used profile."""
        doc = self._profile_docs[profile]
        line, col = doc.value_position(path)
        return doc.file, line, col

    def issue(self, path: PathKey, message: str, severity: str = "error") -> ConfigIssue:
        """A ConfigIssue positioned at ``path`` of the site file."""
        return self._site_doc.issue(path, message, severity=severity)

    def profile_issue(self, profile: str, path: PathKey, message: str, severity: str = "error") -> ConfigIssue:
        """A ConfigIssue positioned at ``path`` of a used profile."""
        return self._profile_docs[profile].issue(path, message, severity=severity)


def shipped_profile_dir(*, env: bool = True) -> Path:
    """The profile library shipped with the agent, or the folder named by $ENERGY_AGENT_PROFILES (unless ``env`` is
    false: the JSON Schema lists what ships).

    In a source checkout the library is the repository's ``device_profiles/``; installed by ``deploy/install.sh``
    it sits beside the venv (``/opt/energy-agent/device_profiles`` for ``/opt/energy-agent/venv``), so the
    installed command finds it without the service's environment."""
    override = os.environ.get(ENV_PROFILES) if env else None
    if override:
        return Path(override)
    checkout = Path(agent.__file__).resolve().parent.parent / "device_profiles"
    beside_venv = Path(sys.prefix).resolve().parent / "device_profiles"
    return checkout if checkout.is_dir() or not beside_venv.is_dir() else beside_venv


def load_profile(path: Path) -> ProfileConfig:
    """Load and check one profile file; raise ConfigError with every issue found."""
    return load_profile_checked(path)[0]


def load_profile_checked(path: Path) -> tuple[ProfileConfig, tuple[ConfigIssue, ...]]:
    """Like ``load_profile``, also returning the warnings of a valid profile (Modbus only)."""
    profile, issues = load_any_profile_checked(path)
    if not isinstance(profile, ProfileConfig):
        raise ConfigError([ConfigIssue(str(path), 1, 1, "protocol", "a DL/T 645 profile, not a Modbus one")])
    return profile, issues


def load_any_profile_checked(path: Path) -> tuple[ProfileConfig | Dlt645ProfileConfig, tuple[ConfigIssue, ...]]:
    """A Modbus or DL/T 645 profile (by its ``protocol:`` key) and its warnings; ConfigError with every issue."""
    profile, _doc, issues = _read_profile(path, str(path))
    if profile is None or _has_errors(issues):
        raise ConfigError(issues)
    return profile, tuple(issues)


def load_site(path: Path) -> LoadedSite:
    """Load a site file and every profile its devices use; raise ConfigError with every issue of all files."""
    doc = load_yaml(path, str(path))
    issues: list[ConfigIssue] = []
    site: SiteConfig | None = None
    try:
        site = SiteConfig.from_document(doc.data)
    except ValidationError as e:
        issues += issues_from_validation(e, doc, SiteConfig)
    every, profile_docs, profile_paths = _load_used_profiles(path, doc, issues)
    profiles = {n: p for n, p in every.items() if isinstance(p, ProfileConfig)}
    dlt645 = {n: p for n, p in every.items() if isinstance(p, Dlt645ProfileConfig)}
    if site is not None:
        issues += check_site(site, doc)
        issues += _bind_dlt645(site, profiles, dlt645, doc)
        issues += [
            doc.issue(at, message, severity="warning") for at, message in readable_secret_files(site, path.parent)
        ]
        if not _has_errors(issues):
            issues += _section_hooks(site, profiles, doc)
    if site is None or _has_errors(issues):
        raise ConfigError(issues)
    return LoadedSite(
        path=path,
        site=site,
        profiles=profiles,
        profile_paths=profile_paths,
        warnings=tuple(sorted(issues, key=lambda i: (i.file, i.line, i.col, i.path))),
        config_hash=_hash(doc, profile_docs),
        _site_doc=doc,
        _profile_docs=profile_docs,
        dlt645_profiles=dlt645,
    )


def _bind_dlt645(
    site: SiteConfig,
    profiles: Mapping[str, ProfileConfig],
    dlt645: Mapping[str, Dlt645ProfileConfig],
    doc: YamlDocument,
) -> list[ConfigIssue]:
    """Each DL/T 645 device gets its profile's points (ratios applied); a Modbus profile named by a DL/T 645 device
    or the other way round, and a version that differs from the profile's, are errors."""
    issues: list[ConfigIssue] = []
    for i, device in enumerate(site.devices):
        name = str(getattr(device, "profile", "") or "")
        if isinstance(device, Dlt645DeviceConfig):
            profile = dlt645.get(name)
            if profile is None:
                if name in profiles:
                    issues.append(
                        doc.issue(
                            ("devices", i, "profile"),
                            f"profile '{name}' is a Modbus profile; a DL/T 645 "
                            "meter needs a protocol: dlt645 profile (energy-agent list profiles)",
                        )
                    )
                continue
            if device.version is not None and device.version != profile.version:
                issues.append(
                    doc.issue(
                        ("devices", i, "version"),
                        f"version {device.version} does not match profile '{name}', which lists DL/T 645-"
                        f"{profile.version} identifiers; pick a {device.version} profile or remove version",
                    )
                )
                continue
            device.bind(profile)
        elif name in dlt645:
            issues.append(
                doc.issue(
                    ("devices", i, "profile"),
                    f"profile '{name}' is a DL/T 645 profile; add protocol: dlt645 "
                    "and the meter's address to this device",
                )
            )
    return issues


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    display: str
    line: int
    col: int


def _load_used_profiles(
    site_path: Path, doc: YamlDocument, issues: list[ConfigIssue]
) -> tuple[dict[str, ProfileConfig | Dlt645ProfileConfig], dict[str, YamlDocument], dict[str, Path]]:
    index = _index_profiles(_profile_folders(site_path, doc, issues))
    profiles: dict[str, ProfileConfig | Dlt645ProfileConfig] = {}
    docs: dict[str, YamlDocument] = {}
    paths: dict[str, Path] = {}
    for i, name in _used_profile_names(doc.data):
        found = index.get(name)
        if not found:
            where = ("devices", i, "profile")
            hint = did_you_mean(name, sorted(index))
            issues.append(doc.issue(where, f"no profile named '{name}' in the profile folders{hint}"))
            continue
        if name in paths:
            continue
        first = found[0]
        issues += [
            ConfigIssue(
                other.display,
                other.line,
                other.col,
                "profile",
                f"profile '{name}' is also defined in {first.display}; rename one of them",
            )
            for other in found[1:]
        ]
        paths[name] = first.path
        profile, pdoc, pissues = _read_profile(first.path, first.display)
        issues += pissues
        if profile is not None and pdoc is not None and not _has_errors(pissues):
            profiles[name] = profile
            docs[name] = pdoc
    return profiles, docs, paths


def _profile_folders(site_path: Path, doc: YamlDocument, issues: list[ConfigIssue]) -> list[list[tuple[Path, str]]]:
    """Folders to search, in order; each as the list of (*.yaml file, display name) it holds."""
    folders: list[list[tuple[Path, str]]] = []
    raw = doc.data.get("profile_dirs") if isinstance(doc.data, dict) else None
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(entry, str):
            continue  # the model reports it
        folder = site_path.parent / entry
        if not folder.is_dir():
            issues.append(doc.issue(("profile_dirs", i), f"profile folder '{entry}' not found next to the site file"))
            continue
        shown = os.path.normpath(Path(str(site_path.parent)) / entry)
        folders.append([(f, os.path.join(shown, f.name)) for f in _yaml_files(folder)])
    shipped = shipped_profile_dir()
    if shipped.is_dir():
        folders.append([(f, str(f)) for f in _yaml_files(shipped)])
    return folders


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _index_profiles(folders: list[list[tuple[Path, str]]]) -> dict[str, list[_Found]]:
    """Profile name -> files claiming it: all from the first folder that has the name."""
    index: dict[str, list[_Found]] = {}
    for folder in folders:
        here: dict[str, list[_Found]] = {}
        for path, display in folder:
            name, line, col = _profile_name(path)
            here.setdefault(name, []).append(_Found(path, display, line, col))
        for name, found in here.items():
            index.setdefault(name, found)
    return index


def _profile_name(path: Path) -> tuple[str, int, int]:
    """The ``profile:`` key's value and position, read without a full parse (the stem if it is not there)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return path.stem, 1, 1
    match = _NAME_LINE.search(text)
    if match is None:
        return path.stem, 1, 1
    line_start = text.rfind("\n", 0, match.start()) + 1
    return match.group(2), text.count("\n", 0, match.start()) + 1, match.start(2) - line_start + 1


def _used_profile_names(data: Any) -> list[tuple[int, str]]:
    """(device index, profile name) of each Modbus device, read from the raw data so a site with errors still
    gets its profiles checked."""
    devices = data.get("devices") if isinstance(data, dict) else None
    out: list[tuple[int, str]] = []
    for i, device in enumerate(devices if isinstance(devices, list) else []):
        if isinstance(device, dict) and device.get("protocol", "modbus") in ("modbus", "dlt645"):
            name = device.get("profile")
            if isinstance(name, str):
                out.append((i, name))
    return out


def _read_profile(
    path: Path, display: str
) -> tuple[ProfileConfig | Dlt645ProfileConfig | None, YamlDocument | None, list[ConfigIssue]]:
    try:
        doc = load_yaml(path, display)
    except ConfigError as e:
        return None, None, list(e.issues)
    if isinstance(doc.data, dict) and doc.data.get("protocol") == "dlt645":
        try:
            return Dlt645ProfileConfig.from_document(doc.data), doc, []
        except ValidationError as e:
            return None, doc, issues_from_validation(e, doc, Dlt645ProfileConfig)
    # A profile may hold 100,000 points: the models are built from its JSON text with the raw data already
    # gone (only positions are needed from here on), and the data comes back from the text for diagnostics.
    text = document_json(doc.data)
    doc = dataclasses.replace(doc, data=None, source=b"")
    try:
        profile = ProfileConfig.from_json(text)
    except ValidationError as e:
        doc = dataclasses.replace(doc, data=json.loads(text))
        return None, doc, issues_from_validation(e, doc, ProfileConfig)
    if len(text) > _LARGE_JSON:
        _give_back_freed_memory()
    return profile, doc, check_profile(profile, doc)


_LARGE_JSON = 1 << 20


def _give_back_freed_memory() -> None:
    """Validating JSON, pydantic-core builds a tree of the whole document outside Python's allocator; glibc keeps
    that memory once it is freed (about 45 MB for 100,000 points, measured with tests/benchmarks/bench_config.py),
    so the read plans built next would come on top of it. Hand it back to the system. A no-op without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _section_hooks(site: SiteConfig, profiles: Mapping[str, ProfileConfig], doc: YamlDocument) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for name in SECTION_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        check = getattr(importlib.import_module(name), "check", None)
        if callable(check):
            for path, message in check(site, profiles):
                issues.append(doc.issue(tuple(path), message))
    return issues


def _has_errors(issues: list[ConfigIssue]) -> bool:
    return any(i.severity == "error" for i in issues)


def _hash(site: YamlDocument, profiles: Mapping[str, YamlDocument]) -> str:
    digest = hashlib.sha256()
    for name, doc in [("", site), *sorted(profiles.items())]:
        digest.update(f"{name}\0".encode())
        digest.update(doc.digest)
    return digest.hexdigest()


def state_dir(loaded: LoadedSite) -> Path:
    """Where the site's spool and state live: systemd's ``$STATE_DIRECTORY`` when set, else the site's
    ``state_dir`` (relative paths are relative to the site file)."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    path = Path(loaded.site.state_dir)
    return path if path.is_absolute() else loaded.path.parent / path
