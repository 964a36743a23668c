"""What the filesystem under the spool can refuse, told apart from bugs, and the two files that help the spool
live with it: the reserve and the moved-aside corrupt spool.

SQLite reports a refused write as SQLITE_FULL (ENOSPC, or a write cut short; also ``max_page_count``), as an
SQLITE_IOERR_* (EFBIG from RLIMIT_FSIZE, EDQUOT, EIO, a failed fsync or truncate), as SQLITE_READONLY_* (a
read-only remount) or as SQLITE_CANTOPEN (the WAL or its directory is gone). All of them are *storage faults*:
the spool applies its full policy and goes on. SQLITE_CORRUPT and SQLITE_NOTADB mean the file is not a sound
spool. Anything else is a bug and propagates.

The reserve is a file of a few MiB beside the spool. On a full disk SQLite cannot even delete: a delete is new
pages in the WAL, and the WAL can only restart from its beginning once a checkpoint has copied it into the
database, which may need to grow the database file. Giving the reserve back to the filesystem lets that
checkpoint run; after it the spool keeps to the pages it already holds. The reserve is made again when space
comes back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from pathlib import Path

from agent.errors import SpoolError, StateDirError

RESERVE_BYTES = 8 << 20  # more than the WAL holds between two automatic checkpoints (1000 pages of 4 KiB)


def is_storage_fault(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name == "SQLITE_FULL" or name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN"))


def is_corrupt(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT")


_OPERATOR_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOENT, errno.EEXIST, errno.EISDIR}


def refused(exc: OSError, message: str) -> SpoolError:
    """StateDirError (exit 78: an operator must act) for permissions, a read-only filesystem or a missing or wrong
    kind of path; SpoolError (restart may help) for the rest, a full disk among them."""
    return StateDirError(message) if exc.errno in _OPERATOR_ERRNOS else SpoolError(message)


def free_bytes(directory: Path) -> int | None:
    """Bytes an unprivileged process may still write on the filesystem of ``directory`` (None if unknown)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class Reserve:
    """A file of ``size`` bytes of allocated blocks, made when there is room and given back on a full disk."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size

    def ensure(self) -> bool:
        """Make the reserve if it is missing; True when it is in place (or none is wanted)."""
        if self.size <= 0:
            return True
        try:
            if self.path.stat().st_size >= self.size:
                return True
        except OSError:
            pass
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.release()  # no half reserve: it would only take space the spool may need
            return False
        return True

    def release(self) -> bool:
        """Give the space back; True if there was a reserve to give."""
        if self.size <= 0:
            return False
        try:
            self.path.unlink()
        except OSError:
            return False
        return True


def move_aside(path: Path, now: float) -> Path:
    """Rename a corrupt spool (and its WAL, which belongs to it) to ``<name>.corrupt-<UTC time>``; its shared-memory
    index is derived data and is removed. Returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(aside)
    with contextlib.suppress(FileNotFoundError):
        Path(f"{path}-wal").rename(f"{aside}-wal")
    with contextlib.suppress(FileNotFoundError):
        Path(f"{path}-shm").unlink()
    return aside
