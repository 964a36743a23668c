"""Golden config cases: each ``tests/cases/config_*/`` folder holds config files and ``expected.txt``, the exact
text a technician sees (one issue per line, file names relative to the folder; empty for a valid config).

A folder with ``site.yaml`` is compiled as ``validate`` and ``run`` do (``agent.runtime.compile``: its
``profile_dirs`` relative to it; the shipped library is replaced by an empty folder so cases do not depend on it);
otherwise each ``*.yaml`` in it is loaded as a profile.

After an intended change of wording, rewrite the files with ``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config.load import ENV_PROFILES, load_profile_checked
from agent.errors import ConfigError, ConfigIssue
from agent.runtime.compile import compile_site

CASES = Path(__file__).resolve().parent.parent / "cases"
CASE_DIRS = sorted(p for p in CASES.glob("config_*") if p.is_dir())


def render(case: Path) -> str:
    issues: list[ConfigIssue] = []
    if (case / "site.yaml").exists():
        try:
            issues += compile_site(Path("site.yaml")).warnings
        except ConfigError as e:
            issues += e.issues
    else:
        for profile in sorted(case.glob("*.yaml")):
            try:
                issues += load_profile_checked(Path(profile.name))[1]
            except ConfigError as e:
                issues += e.issues
    return "".join(f"{issue}\n" for issue in ConfigError(issues).issues)


def test_there_are_cases() -> None:
    assert len(CASE_DIRS) >= 17


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_golden_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path))  # an empty shipped library
    got = render(case)
    expected_file = case / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")
