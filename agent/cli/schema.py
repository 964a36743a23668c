"""``energy-agent schema [--out DIR] [--which site|profile|wire] [--path]``: JSON Schemas for editors and the centre.

With ``--out DIR`` writes ``profile.schema.json``, ``site.schema.json`` and ``wire-v1.schema.json`` to DIR (created
if needed). Without it prints one schema to stdout, the site's by default (``--which`` picks another). ``--path``
prints the folder holding the installed copies: ``/opt/energy-agent/schemas`` where ``deploy/install.sh`` put them
(beside the venv), else the package's own ``agent/data``. Editors with a YAML language server complete keys, show
each key's description and check values as ``validate`` does, given a first line such as

    # yaml-language-server: $schema=/opt/energy-agent/schemas/site.schema.json

The site schema offers the shipped profile names for a device's ``profile`` (any other name is allowed: a profile
of the site's ``profile_dirs``). Each schema accepts what the loader's models accept (tests/unit/test_config_schema.py
feeds both the same documents); what JSON Schema cannot say (a range's order, a formula's grammar) is left to
``validate``. Copies ship in ``agent/data/``; regenerate them after changing a config model, the profile library or
the wire payload with

    .venv/bin/energy-agent schema --out agent/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import agent
from agent import wire
from agent.config.load import shipped_profile_dir
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.config.yaml_source import load_yaml
from agent.errors import ConfigError

NAME = "schema"
HELP = "write the JSON Schemas of site files, device profiles and the MQTT payload"
FILES = {"site": "site.schema.json", "profile": "profile.schema.json", "wire": "wire-v1.schema.json"}
_BASE_ID = "https://plant-energy-agent/"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="DIR", help="write all three schemas to this folder")
    parser.add_argument("--which", choices=sorted(FILES), default="site", help="schema to print without --out")
    parser.add_argument("--path", action="store_true", help="print the folder of the installed schemas, for editors")


def run(args: argparse.Namespace) -> int:
    if args.path:
        print(installed_dir())
        return 0
    texts = {name: render(schema) for name, schema in schemas().items()}
    if args.out is None:
        sys.stdout.write(texts[args.which])
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (args.out / FILES[name]).write_text(text, encoding="utf-8")
    return 0


def installed_dir() -> Path:
    """Where the schemas of this installation are: beside the venv (install.sh), else in the package."""
    beside_venv = Path(sys.prefix).resolve().parent / "schemas"
    return beside_venv if (beside_venv / FILES["site"]).is_file() else Path(agent.__file__).resolve().parent / "data"


def schemas() -> dict[str, dict[str, Any]]:
    """The three schemas, by short name (site, profile, wire)."""
    site = _model_schema(SiteConfig, "site", "Plant energy agent site file (one per gateway)")
    _offer_profiles(site, shipped_profiles())
    return {
        "site": site,
        "profile": _model_schema(ProfileConfig, "profile", "Plant energy agent device profile"),
        "wire": wire.json_schema(),
    }


def render(schema: dict[str, Any]) -> str:
    """Stable text of a schema: two-space indent, keys in model order, UTF-8, final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _model_schema(model: Any, name: str, title: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_BASE_ID}{FILES[name]}",
    }
    schema.update(model.model_json_schema())
    schema["title"] = title
    return schema


def shipped_profiles() -> list[str]:
    """Names of the profiles in the shipped library (not $ENERGY_AGENT_PROFILES), sorted."""
    names: set[str] = set()
    folder = shipped_profile_dir(env=False)
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            data = load_yaml(path, str(path)).data
        except ConfigError:
            continue  # validate and `list profiles` report it
        if isinstance(data, dict) and isinstance(data.get("profile"), str):
            names.add(data["profile"])
    return sorted(names)


def _offer_profiles(site: dict[str, Any], names: list[str]) -> None:
    """A device's ``profile``: the shipped names for completion, or any other (a site's own profile). DL/T 645
    profiles are named dlt645-* in the library."""
    for model, offered in (
        ("ModbusDeviceConfig", [n for n in names if not n.startswith("dlt645-")]),
        ("Dlt645DeviceConfig", [n for n in names if n.startswith("dlt645-")]),
    ):
        prop = site["$defs"][model]["properties"]["profile"]
        prop["examples"] = offered
        prop["anyOf"] = [
            {"enum": offered, "description": "a profile shipped with the agent"},
            {"type": "string", "description": "a profile in one of the site's profile_dirs"},
        ]
