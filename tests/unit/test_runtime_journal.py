"""Log priorities reach journald: under systemd (JOURNAL_STREAM set) every stdout line starts with <N>."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agent.cli.run import configure_logging
from agent.runtime.journal import syslog_priority


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_levels_map_to_syslog_priorities() -> None:
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 25]
    assert [syslog_priority(n) for n in levels] == [7, 6, 4, 3, 2, 6]


@pytest.mark.usefixtures("restore_logging")
def test_under_journald_every_line_carries_its_priority(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:123456")
    configure_logging("INFO")
    log = logging.getLogger("agent.sources.modbus")
    log.debug("not shown at INFO")
    log.info("kiln1-meter: recovered after 3 failed polls")
    log.warning("kiln1-meter: failed: timeout after 1000 ms")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        logging.getLogger("agent.runtime").exception("task crashed")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "<6>INFO agent.sources.modbus: kiln1-meter: recovered after 3 failed polls",
        "<4>WARNING agent.sources.modbus: kiln1-meter: failed: timeout after 1000 ms",
        "<3>ERROR agent.runtime: task crashed",
    ]
    assert lines[3] == "<3>Traceback (most recent call last):" and lines[-1] == "<3>RuntimeError: a bug"
    assert all(line.startswith("<3>") for line in lines[3:])


@pytest.mark.usefixtures("restore_logging")
def test_on_a_terminal_lines_have_a_time_and_no_prefix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_logging("INFO")
    logging.getLogger("agent.runtime").warning("spool: 3 records dropped")
    [line] = capsys.readouterr().out.splitlines()
    assert line.endswith(" WARNING agent.runtime: spool: 3 records dropped") and not line.startswith("<")
