"""One agent per state directory: an exclusive ``flock`` on ``<state_dir>/agent.lock``, held while the agent runs.

Two agents on one state directory would share one spool and one MQTT client id: the broker hands the session
back and forth between them and every message goes out twice. The lock file holds the PID of its holder, so the
second agent can say which process to stop. The kernel drops the lock when the holder exits, however it exits
(kill -9 included), so a stale file never blocks a start. Readers (``energy-agent spool stats``) take no lock.

Errors that an operator must fix (a directory that cannot be created or written) raise StateDirError naming the
directory and the fix; a full filesystem here is not one of them (SpoolError: it may pass).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from agent.errors import SpoolError, StateDirError
from agent.spool.storage import refused

LOCK_FILE = "agent.lock"
_FIX = (
    "make it writable for the agent's user, or set state_dir in the site file (StateDirectory= under systemd) to a "
    "writable directory"
)


class StateDirLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path) -> StateDirLock:
        """Create the directory if needed and lock it. Raises StateDirError when it cannot be used or another
        process holds it (the message names that process's PID)."""
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise refused(exc, f"state directory {directory}: cannot be created: {exc.strerror}; {_FIX}") from exc
        path = directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise refused(exc, f"state directory {directory}: not writable ({exc.strerror}); {_FIX}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StateDirError(
                f"state directory {directory} is in use by another energy-agent (PID {holder}, per {path}); "
                "two agents on one state directory would share one spool and one MQTT client id: stop the other "
                "one, or give this site its own state_dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only the PID is not written for others to read
        return cls(path, fd)

    def renewed(self) -> StateDirLock:
        """The lock on a fresh lock file, after the directory (or the file) was removed under the agent: the old
        lock holds a removed file, which another agent would not see. Keeps the old one if another agent got in."""
        try:
            fresh = StateDirLock.acquire(self.path.parent)
        except SpoolError:
            return self
        self.release()
        return fresh

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale PID for an operator to chase
        os.close(fd)  # drops the flock


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
