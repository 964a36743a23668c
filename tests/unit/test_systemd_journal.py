"""Log priorities reach journald: under systemd (JOURNAL_STREAM set) every stdout line starts with <N>."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli.run import configure_logging
from agent.systemd.journal import syslog_priority


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


@pytest.mark.parametrize("journal", [True, False])
def test_a_refused_start_is_an_error_to_journald(tmp_path: Path, journal: bool) -> None:
    """`run` on a site it refuses prints its reasons on stderr; under systemd each line must carry <3>, or
    `journalctl -p err` would not show why the agent did not start."""
    site = tmp_path / "site.yaml"
    site.write_text("site: s1\ngateway: g1\ndevices: []\nmqtt: {host: 127.0.0.1}\nbogus_key: 1\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal:
        env["JOURNAL_STREAM"] = "8:123456"
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", str(site)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 78
    lines = proc.stderr.splitlines()
    assert lines and any("bogus_key" in line for line in lines)
    prefixed = [line.startswith("<3>") for line in lines]
    assert prefixed == [journal] * len(lines)
