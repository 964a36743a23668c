"""``energy-agent schema [--out DIR] [--which site|profile|wire]``: JSON Schemas for editors and the centre.

With ``--out DIR`` writes ``profile.schema.json``, ``site.schema.json`` and ``wire-v1.schema.json`` to DIR (created
if needed). Without it prints one schema to stdout, the site's by default (``--which`` picks another). Editors
with a YAML language server complete keys and show descriptions from these, e.g. a first line
``# yaml-language-server: $schema=/usr/share/energy-agent/site.schema.json``.

Copies ship in ``agent/data/``; regenerate them after changing a config model or the wire payload with

    .venv/bin/energy-agent schema --out agent/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent import wire
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig

NAME = "schema"
HELP = "write the JSON Schemas of site files, device profiles and the MQTT payload"
FILES = {"site": "site.schema.json", "profile": "profile.schema.json", "wire": "wire-v1.schema.json"}
_BASE_ID = "https://plant-energy-agent/"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="DIR", help="write all three schemas to this folder")
    parser.add_argument("--which", choices=sorted(FILES), default="site", help="schema to print without --out")


def run(args: argparse.Namespace) -> int:
    texts = {name: render(schema) for name, schema in schemas().items()}
    if args.out is None:
        sys.stdout.write(texts[args.which])
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (args.out / FILES[name]).write_text(text, encoding="utf-8")
    return 0


def schemas() -> dict[str, dict[str, Any]]:
    """The three schemas, by short name (site, profile, wire)."""
    return {
        "site": _model_schema(SiteConfig, "site", "Plant energy agent site file (one per gateway)"),
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
