"""Process-wide record of the Modbus function codes every simulator served, for the suite's read-only check.

The agent must never write to plant equipment. Every simulator in this process records each request's function
code here (and in its own ``served`` counter); simulators started as child processes (``python -m simulators``)
append write codes to the file named by ``$SIMULATORS_WRITES_FILE``. ``tests/conftest.py`` fails the run at session end if any write
function code was ever served.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 22, 23})
DLT645_BASE = 0x1000  # DL/T 645 control codes are recorded as DLT645_BASE + code (simulators.dlt645_server)
DLT645_READS = frozenset({0x11, 0x12, 0x13, 0x01})  # 2007 read, read follow-up, read address; 1997 read


def is_write(code: int) -> bool:
    """A Modbus write function code, or any DL/T 645 control code but the reads."""
    if code >= DLT645_BASE:
        return code - DLT645_BASE not in DLT645_READS
    return code in WRITE_FUNCTION_CODES


SERVED_FILE_ENV = "SIMULATORS_WRITES_FILE"  # simulators in child processes append write codes to this file

SERVED: Counter[int] = Counter()


def record(function_code: int) -> None:
    SERVED[function_code] += 1
    if is_write(function_code) and (path := os.environ.get(SERVED_FILE_ENV)):
        with Path(path).open("a", encoding="ascii") as f:
            f.write(f"{function_code} {os.getpid()}\n")


def writes_in_file(path: str | Path, exclude_pid: int | None = None) -> dict[int, int]:
    """Write function codes that simulators appended to ``path``, except those of process ``exclude_pid``
    (pass ``os.getpid()`` to count other processes only, when this one's ``SERVED`` is counted already)."""
    counts: Counter[int] = Counter()
    p = Path(path)
    if p.exists():
        for line in p.read_text(encoding="ascii").splitlines():
            fields = line.split()
            if len(fields) == 2 and int(fields[1]) != exclude_pid:
                counts[int(fields[0])] += 1
    return dict(sorted(counts.items()))


def writes_served(served: Counter[int] | None = None) -> dict[int, int]:
    """Write function codes in ``served`` (default: the whole process) with how often each was served."""
    counts = SERVED if served is None else served
    return {fc: n for fc, n in sorted(counts.items()) if is_write(fc) and n > 0}
