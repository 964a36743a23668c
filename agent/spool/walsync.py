"""The ``interval`` fsync policy's durability point: an fsync of the spool's WAL, on a helper thread.

fsync can take milliseconds to tens of milliseconds on a gateway's flash or a VM disk; on the event loop it would
delay every poll and publish behind it. One fsync runs at a time; SQLite itself is never touched from the
helper thread. A failed fsync (EIO, ENOSPC on a thin volume, the directory removed) is logged once, counted,
and retried at the next durability point: restarting the agent would not make the disk take the data, and the
spool's commits stay readable by this process. The recovery is logged once too.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("agent.spool.sqlite")


class WalSyncer:
    """Owned by one SqliteSpool and called from its thread only. ``dirty`` is set by the spool after a commit."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.dirty = False  # commits since the last fsync of the WAL
        self.last = time.monotonic()
        self.failures = 0
        self._fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: Future[None] | None = None
        self._failing = False

    def soon(self) -> None:
        """Hand an fsync of the WAL to the helper thread, unless one is still running (it covers this round's
        commits only if they came before it started, so ``dirty`` stays set for the next round)."""
        self._collect()
        if self._in_flight is not None or not self.dirty:
            return
        self.last = time.monotonic()
        fd = self._wal()
        if fd is None:
            return
        self.dirty = False
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-fsync")
        self._in_flight = self._executor.submit(os.fsync, fd)

    def close(self) -> None:
        """Wait for an fsync in flight, fsync once more on this thread, release the thread and the descriptor."""
        try:
            if self._in_flight is not None:
                self._in_flight.exception()  # wait
                self._collect()
            self.last = time.monotonic()
            fd = self._wal() if self.dirty else None
            if fd is not None:
                self.dirty = False
                try:
                    os.fsync(fd)
                    self._succeeded()
                except OSError as exc:
                    self._failed(exc)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _wal(self) -> int | None:
        """The WAL's file descriptor, opened once (None before anything was written, or when it cannot be)."""
        if self._fd is None:
            try:
                self._fd = os.open(f"{self.db_path}-wal", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                self._failed(exc)
                return None
            try:
                fsync_dir(self.db_path.parent)  # the WAL's directory entry must survive a power cut too
            except OSError as exc:
                self._failed(exc)
        return self._fd

    def _collect(self) -> None:
        future = self._in_flight
        if future is None or not future.done():
            return
        self._in_flight = None
        exc = future.exception()
        if isinstance(exc, OSError):
            self._failed(exc)
        elif exc is not None:
            raise exc
        else:
            self._succeeded()

    def _failed(self, exc: OSError) -> None:
        self.failures += 1
        self.dirty = True  # try again at the next durability point
        if not self._failing:
            self._failing = True
            log.error(
                "spool %s: fsync of the WAL failed (%s); appends since the last good fsync may not survive a power "
                "cut; retrying",
                self.db_path,
                exc.strerror or exc,
            )

    def _succeeded(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("spool %s: fsync of the WAL works again after %d failures", self.db_path, self.failures)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
