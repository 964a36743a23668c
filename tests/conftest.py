"""Shared fixtures and the suite's own rules. Server helpers live in tests/servers/, plant fixtures in
tests/simfixtures.py.

Parallel runs (pytest-xdist, ``deploy/test.sh`` passes ``-n``): every test already takes its own free ports and
``tmp_path``; what is process-wide is set up here once, in the controller, before the workers start, so they
inherit it: the file simulators report served write requests to (the suite-wide read-only check, judged once, in
the controller, at the end).

Markers: ``e2e`` for tests that start real servers, processes or filesystems; every test under tests/e2e/ gets
it here. The fast loop is ``pytest -n auto -m "not e2e"``. ``long`` for a test that runs for half a minute or more
(a fresh virtualenv, a live demo, a long property run).

Order in a parallel run: ``long`` tests first, then ``e2e``, then the rest, so the longest work starts at once on
its own worker and the many short tests fill the gaps at the end; each test goes to the next free worker, except
that the tests of a module defining a module- or class-scoped fixture (one simulator for the whole module) go to
one worker together, so that fixture starts once (``ModuleFixtureScheduling`` below).
"""

import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from simulators.registry import SERVED_FILE_ENV

# Property tests assert behaviour, not speed: a busy 2-core CI machine must not turn a slow example into a failure.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

pytest_plugins = ["tests.simfixtures"]

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # In the controller (or a run without xdist) before any worker exists: workers inherit the environment.
    if not is_xdist_worker(config) and not os.environ.get(SERVED_FILE_ENV):
        os.environ[SERVED_FILE_ENV] = os.path.join(tempfile.mkdtemp(prefix="sim-writes-"), "writes.txt")


SHARED_SCOPE = re.compile(r"""scope\s*=\s*["'](module|class|package)["']""")


@functools.cache
def defines_shared_fixture(path: Path) -> bool:
    """Whether a test module defines a fixture set up once for several of its tests (read from its source: the
    xdist controller schedules by test id and has no fixture information)."""
    try:
        return bool(SHARED_SCOPE.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixtureScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist has no type hints
        """One test per work unit, to the next free worker; a module with a shared fixture is one unit."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if defines_shared_fixture(config.rootpath / path) else nodeid

    return ModuleFixtureScheduling(config, log)


def run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("long"):
        return 0
    if item.get_closest_marker("e2e"):
        return 1
    return 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)
    if is_xdist_worker(config):
        items.sort(key=run_order)  # stable: the file order stays within each rank


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Workers' simulators (in-process ones included) append to the shared file, so the controller sees them all.
    if is_xdist_worker(session.config):
        return
    from tests.simfixtures import read_only_violations

    message = read_only_violations(os.environ.get(SERVED_FILE_ENV))
    if message:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
