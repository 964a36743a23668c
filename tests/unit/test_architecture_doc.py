"""docs/architecture.md stays true where that is cheap to check: every package under agent/ is named in it, and
every file or folder it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
# a path in backticks: `agent/kpi/`, `sources/opcua/errors.py`, `runtime/compile.py`, `device_profiles/`
PATH = re.compile(r"`((?:[A-Za-z0-9_.-]+/)+(?:[A-Za-z0-9_.-]+\.[a-z]+)?)`")


def packages() -> list[str]:
    """Every package under agent/, as ``agent/<path>/``."""
    return sorted(f"{p.parent.relative_to(ROOT).as_posix()}/" for p in (ROOT / "agent").rglob("__init__.py"))


def named_paths(text: str) -> list[str]:
    return sorted(set(PATH.findall(text)))


def resolves(name: str) -> bool:
    """A path the doc names exists from the repository root or from agent/ (``sources/base.py``)."""
    return any((base / name).exists() for base in (ROOT, ROOT / "agent"))


def test_every_package_under_agent_is_named_in_the_map() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        p for p in packages() if p != "agent/" and f"`{p}`" not in text and f"`{p.split('/', 1)[1]}`" not in text
    ]
    assert missing == [], f"docs/architecture.md does not name {missing}: add each to the code map (and its layer)"


def test_every_path_the_map_names_exists() -> None:
    gone = [name for name in named_paths(DOC.read_text(encoding="utf-8")) if not resolves(name)]
    assert gone == [], f"docs/architecture.md names paths that do not exist: {gone}"


def test_the_checks_see_a_missing_package_and_a_stale_path() -> None:
    assert named_paths("see `agent/kpi/` and `sources/opcua/errors.py`, not `x`") == [
        "agent/kpi/",
        "sources/opcua/errors.py",
    ]
    assert resolves("agent/kpi/") and resolves("sources/opcua/errors.py") and resolves("device_profiles/")
    assert not resolves("agent/nothing_here/") and not resolves("sinks/kafka.py")
    assert "agent/sources/modbus/" in packages() and "agent/runtime/" in packages()
