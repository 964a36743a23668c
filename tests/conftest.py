"""Shared fixtures. Server helpers live in tests/servers/."""

# --- simulated plant fixtures and the suite-wide read-only check (simulators/registry.py) -------------------------
import os
import tempfile

import pytest
from hypothesis import settings

from simulators.registry import SERVED_FILE_ENV

# Property tests assert behaviour, not speed: a busy 2-core CI machine must not turn a slow example into a failure.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

pytest_plugins = ["tests.simfixtures"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get(SERVED_FILE_ENV):  # simulators in child processes report writes here
        os.environ[SERVED_FILE_ENV] = os.path.join(tempfile.mkdtemp(prefix="sim-writes-"), "writes.txt")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.simfixtures import read_only_violations

    message = read_only_violations(os.environ.get(SERVED_FILE_ENV))
    if message:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
