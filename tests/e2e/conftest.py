"""Fixtures of the end-to-end tests."""

from collections.abc import Iterator

import pytest

from tests.e2e.agent_harness import AgentProcess


@pytest.fixture(autouse=True)
def _no_agent_left_running() -> Iterator[None]:
    yield
    AgentProcess.stop_leftovers()
