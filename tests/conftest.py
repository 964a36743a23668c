"""Shared fixtures and the suite's own rules. Server helpers live in tests/servers/, plant fixtures in
tests/simfixtures.py.

Parallel runs (pytest-xdist, ``deploy/test.sh`` passes ``-n``): every test already takes its own free ports and
``tmp_path``; what is process-wide is set up here once, in the controller, before the workers start, so they
inherit it: the file simulators report served write requests to (the suite-wide read-only check, judged once, in
the controller, at the end).

Markers: ``e2e`` for tests that start real servers, processes or filesystems; every test under tests/e2e/ gets
it here. ``long`` for a test that takes five seconds or more, its module fixture's share included (a fresh
virtualenv, a live demo, minutes of plant time, a long property run). The fast loop skips both:
``pytest -n 4 -m "not e2e and not long"`` (two workers per core: most tests wait on sockets and timers).

Order in a parallel run: ``long`` tests first, longest first (``@pytest.mark.long(seconds=N)``: what it takes on a
quiet 2-core machine), then ``e2e``, then the rest, so the longest work starts at once and the many short tests
fill the gaps at the end. Each test goes to the next free worker, except that the tests of a module defining a
module- or class-scoped fixture (one simulator for the whole module) go to one worker together, so that fixture
starts once (``ModuleFixtureScheduling`` below). An xdist worker holds the test it runs and the next one (it needs
the next to know which fixtures to tear down), so a long test is never given to a worker as the one *after*
another long test: it would wait there while other workers run out of work.
"""

import functools
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from simulators.registry import SERVED_FILE_ENV

# The suite starts hundreds of Python processes (workers, agents, simulators, centres): each loads the bytecode the
# first one compiled (__pycache__, git-ignored) instead of compiling every module again, even where the environment
# says not to write it (PYTHONDONTWRITEBYTECODE is set on these machines: it doubled each worker's collection).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Property tests assert behaviour, not speed: a busy 2-core CI machine must not turn a slow example into a failure.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

pytest_plugins = ["tests.simfixtures"]

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


LONG_FILE_ENV = "ENERGY_AGENT_TEST_LONG_FILE"  # the workers' list of long tests, for the controller's scheduler
DEFAULT_LONG_S = 30.0


def pytest_configure(config: pytest.Config) -> None:
    # In the controller (or a run without xdist) before any worker exists: workers inherit the environment.
    if not is_xdist_worker(config) and not os.environ.get(SERVED_FILE_ENV):
        os.environ[SERVED_FILE_ENV] = os.path.join(tempfile.mkdtemp(prefix="sim-writes-"), "writes.txt")
    if not is_xdist_worker(config):
        os.environ[LONG_FILE_ENV] = os.path.join(tempfile.mkdtemp(prefix="long-tests-"), "long.json")


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
        """One test per work unit, to the next free worker; a module with a shared fixture is one unit. A worker
        busy with a long test gets a short one to hold next, not another long one."""

        long_tests: frozenset[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if defines_shared_fixture(config.rootpath / path) else nodeid

        def _assign_work_unit(self, node: Any) -> None:
            if self.long_tests is None:  # written by the workers while collecting, read once all have collected
                self.long_tests = frozenset(read_long_tests())
            long_tests = self.long_tests
            pending = (
                nid for unit in self.assigned_work.get(node, {}).values() for nid, done in unit.items() if not done
            )
            if any(nid in long_tests for nid in pending):
                short = next((k for k, unit in self.workqueue.items() if long_tests.isdisjoint(unit)), None)
                if short is not None:
                    self.workqueue.move_to_end(short, last=False)
            super()._assign_work_unit(node)

    return ModuleFixtureScheduling(config, log)


def long_seconds(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("long")
    return None if marker is None else float(marker.kwargs.get("seconds", DEFAULT_LONG_S))


def run_order(item: pytest.Item) -> tuple[int, float]:
    seconds = long_seconds(item)
    if seconds is not None:
        return 0, -seconds
    if item.get_closest_marker("e2e"):
        return 1, 0.0
    return 2, 0.0


def read_long_tests() -> list[str]:
    path = os.environ.get(LONG_FILE_ENV)
    try:
        names: list[str] = json.loads(Path(path).read_text()) if path else []
    except (OSError, ValueError):
        return []  # no worker wrote it (no long test collected): schedule in collection order
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)
    if is_xdist_worker(config):
        items.sort(key=run_order)  # stable: the file order stays within each rank
        path = os.environ.get(LONG_FILE_ENV)
        if path and getattr(config, "workerinput", {}).get("workerid") == "gw0":  # every worker collects the same tests
            names = [item.nodeid for item in items if long_seconds(item) is not None]
            Path(path + ".tmp").write_text(json.dumps(names))
            os.replace(path + ".tmp", path)


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
