"""Log lines for journald: the syslog priority as an ``<N>`` prefix on every line (sd-daemon(3)).

journald reads stdout of a unit with ``SyslogLevelPrefix=yes`` (the default) and takes a leading ``<N>`` as the
line's priority, so ``journalctl -u energy-agent -p warning`` shows warnings and errors only. Every line of a
multi-line record (a traceback) carries the prefix: journald stores each line as its own entry.
"""

from __future__ import annotations

import logging
import os

# syslog priorities: 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    return next((priority for level, priority in _PRIORITIES if levelno >= level), 7)


class JournalFormatter(logging.Formatter):
    """A Formatter whose every output line starts with ``<N>``, N the record's syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def error_prefix() -> str:
    """``<3>`` under systemd, else nothing: for the lines a command prints on stderr when it refuses to start, so a
    bad site or an unusable state dir shows in ``journalctl -p err`` like every other error."""
    return "<3>" if os.environ.get("JOURNAL_STREAM") else ""
