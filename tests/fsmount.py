"""Small real filesystems for storage-fault tests: a tmpfs of a given size (full for real: ENOSPC), or read-only
(EROFS). Mounting needs root with CAP_SYS_ADMIN; where it is not permitted the test is skipped with the reason,
and tests/unit/test_spool_storage.py covers the same error paths without a mount."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip(f"mounting a tmpfs needs root (CAP_SYS_ADMIN); this run is uid {os.geteuid()}")
    options = f"size={size_bytes},mode=0755" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def resize(path: Path, size_bytes: int) -> None:
    """Grow (or shrink) a mounted tmpfs: space comes back without touching the files on it."""
    subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(path)], check=True, capture_output=True)


def fill(path: Path, leave_bytes: int = 0) -> Path:
    """Take the free space of the filesystem at ``path``, leaving about ``leave_bytes``; returns the filler file.

    A tmpfs undoes a whole ``fallocate`` that does not fit: when a running agent writes between the look at the free
    space and the request, nothing at all is taken (the disk stayed empty and a test waited in vain for the agent to
    meet a full one). So the rest is asked for again, from the file's end, until nothing is left to take."""
    filler = path / "filler"
    with filler.open("ab") as f:
        for _ in range(1000):
            st = os.statvfs(path)
            want = st.f_bavail * st.f_frsize - leave_bytes
            if want <= 0:
                break
            with contextlib.suppress(OSError):  # ENOSPC: the space shrank meanwhile; look again
                os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, want)
    return filler
