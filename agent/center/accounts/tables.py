"""The agent's coefficient and level tables as the accounts read them (``agent/data/energy_factors.yaml`` and
``energy_levels.yaml``): data only, so the accounts' config can check names against them without the arithmetic."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from ruamel.yaml import YAML


@cache
def data_file(name: str) -> Any:
    text = resources.files("agent.data").joinpath(name).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


def kj_per_kgce() -> float:
    return float(data_file("energy_factors.yaml").get("standard_coal_kj_per_kgce", 29307.6))


def factor_names() -> list[str]:
    return sorted(data_file("energy_factors.yaml")["carriers"])


def grid_choices() -> list[tuple[int, str]]:
    return [(int(g["year"]), str(g["scope"])) for g in data_file("energy_factors.yaml")["grid_factors"]]


def indicators() -> list[str]:
    return sorted({str(r["indicator"]) for r in data_file("energy_levels.yaml")["levels"]})
