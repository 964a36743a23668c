"""Spool section of the site file: where the durable store-and-forward spool lives, how big it may grow, and
when it forces its writes to disk. Owned by the MQTT publishing work (issue 5).

Fsync policies (the promise each makes is measured by ``tests/benchmarks/spool_append.py``):

``interval`` (default)
    SQLite WAL with ``synchronous=NORMAL``: every append is its own committed transaction, so a crash of the
    agent process (kill -9, OOM, bug) loses nothing that ``append`` returned for. The WAL is fsynced whenever a
    spool call finds the last fsync older than ``fsync_interval_ms``; the publisher calls the spool at least
    once a second, so a power cut loses at most the appends of the last ``max(fsync_interval_ms, 1 s)``.
    The database is never corrupted by a power cut (WAL frames are checksummed; a torn tail is discarded).
``always``
    ``synchronous=FULL``: every append is fsynced before it returns. Nothing is lost on a power cut; appends
    cost one fsync each (see the benchmark for the rate on your disk).

Group commit (``group_commit_ms``, default 2 ms): the first poll that reaches the spool opens a window; the polls
that finish within it are stored in one transaction, and only then offered to the sink (durable first). The
window closes early once no Modbus or DL/T 645 poll is in progress (a poll step's burst is all in), so it costs no
wake-up of its own and delays a message by at most that long; it changes neither fsync policy (a commit is still a commit) nor
what a crash can lose (nothing is offered before its commit). On stop, what a window holds is committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.config.base import StrictModel

SPOOL_FILE = "spool.sqlite"
GROUP_COMMIT_MS = 2.0


class SpoolConfig(StrictModel):
    """The durable spool every MQTT message passes through before it is published."""

    path: str | None = Field(default=None, description=f"Spool database; default <state_dir>/{SPOOL_FILE}")
    max_bytes: int = Field(
        default=1 << 30,
        ge=1 << 16,
        description="Bound on stored messages (topic + payload + 64 B per record); when reached, the oldest "
        "status messages, then the oldest samples, then the oldest KPIs are dropped and counted",
    )
    max_age_s: float = Field(
        default=7 * 86400.0, gt=0, description="Messages older than this are dropped and counted (default 7 days)"
    )
    fsync: Literal["interval", "always"] = Field(
        default="interval", description="interval: fsync the WAL every fsync_interval_ms; always: fsync every append"
    )
    fsync_interval_ms: float = Field(
        default=200.0,
        ge=0,
        le=60000,
        description="With fsync: interval, the longest time between two fsyncs of the WAL, in milliseconds",
    )
    group_commit_ms: float = Field(
        default=GROUP_COMMIT_MS,
        ge=0,
        le=100,
        description="Polls that finish within this many milliseconds of the first share one spool transaction and "
        "are published together (fewer commits and wake-ups; each message waits at most this long before it is "
        "stored and published; the window closes as soon as no Modbus or DL/T 645 poll is in progress); 0: only "
        "the polls of one event-loop turn",
    )

    def resolve_path(self, state_dir: str | Path) -> Path:
        """The spool file: ``path`` if given (relative paths are under ``state_dir``), else the default."""
        if self.path is None:
            return Path(state_dir) / SPOOL_FILE
        p = Path(self.path)
        return p if p.is_absolute() else Path(state_dir) / p
