"""The spool when storage misbehaves, without special mounts: a database that may not grow (SQLite's
``max_page_count`` gives the same SQLITE_FULL a full disk gives), a file size limit (RLIMIT_FSIZE: EFBIG, which
SQLite reports as an I/O error), a WAL whose fsync the kernel refuses, corrupt files, and the state-dir lock.
Real full filesystems are in tests/integration/test_spool_disk_full.py."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError, StateDirError
from agent.spool.lock import LOCK_FILE, StateDirLock
from agent.spool.sqlite import SqliteSpool
from agent.spool.walsync import WalSyncer

TOPIC = "plant/s1/gw1/m1/samples"
KPI_TOPIC = "plant/s1/gw1/kpi"
STATUS_TOPIC = "plant/s1/gw1/status"
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def cap_pages(spool: SqliteSpool, extra: int) -> None:
    """Let the database grow by ``extra`` pages only, as a nearly full disk would."""
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count={pages + extra}").fetchone()


def test_a_database_that_cannot_grow_drops_the_oldest_by_policy_and_keeps_appending(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), clock)
    status = [spool.append(STATUS_TOPIC, b"st" * 300, "status") for _ in range(3)]
    kpis = [spool.append(KPI_TOPIC, b"k" * 900, "kpi", seq=i) for i in range(5)]
    cap_pages(spool, 40)
    samples = [spool.append(TOPIC, b"s" * 1500, "samples", seq=5 + i) for i in range(400)]

    assert None not in samples, "the disk refused growth, but deleting the oldest always made room"
    stored = spool.read(0, 1000)
    kept = [r.id for r in stored if r.kind == "samples"]
    stats = spool.stats()
    assert [r.id for r in stored if r.kind == "kpi"] == kpis, "no KPI goes while samples remain"
    assert not [r for r in stored if r.kind == "status"], "status messages go first"
    assert kept == samples[-len(kept) :] and 10 < len(kept) < 400, "the newest samples are kept, the oldest went"
    assert stats.dropped_full == {"status": len(status), "samples": 400 - len(kept), "kpi": 0}
    assert stats.dropped_unwritable == {"samples": 0, "kpi": 0, "status": 0}
    assert "full" in stats.disk_fault
    refusals = [r for r in caplog.records if "refuses writes" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR, "one line per episode"
    assert "database or disk is full" in refusals[0].getMessage()

    spool._db.execute("PRAGMA max_page_count=1073741823").fetchone()  # space is back
    clock.now += 6  # the spool looks again every few seconds
    spool.append(TOPIC, b"s" * 1500, "samples")  # still within the old space; then the spool looks
    before = spool.stats()
    more = [spool.append(TOPIC, b"s" * 1500, "samples") for _ in range(100)]
    assert None not in more and spool.stats().disk_fault == ""
    assert spool.stats().depth == before.depth + 100, "it grows again"
    assert spool.stats().dropped_full == before.dropped_full, "nothing more dropped"
    ended = [r.getMessage() for r in caplog.records if "takes writes again" in r.getMessage()]
    assert len(ended) == 1 and f"{before.dropped_full['samples']} samples" in ended[0]
    spool.close()
    reopened = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), clock)
    assert reopened.stats().dropped_full == before.dropped_full, "the drops were counted in their transactions"
    reopened.close()


def test_acks_and_expiry_go_on_while_the_database_cannot_grow(tmp_path: Path) -> None:
    clock = Clock()
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_age_s=60), clock)
    cap_pages(spool, 30)
    ids = [spool.append(TOPIC, b"s" * 1500, "samples") for _ in range(200)]
    assert spool.stats().disk_fault
    live = [r.id for r in spool.read(0, 1000)]
    spool.ack(live[:5])
    assert [r.id for r in spool.read(0, 1000)] == live[5:]
    clock.now += 61
    assert spool.expire() == len(live) - 5
    assert spool.stats().dropped_expired["samples"] == len(live) - 5
    assert ids[-1] is not None and spool.append(TOPIC, b"after", "samples") == ids[-1] + 1
    spool.close()


_EFBIG_CHILD = """
import json, resource, signal, sys
from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
spool = SqliteSpool.open(sys.argv[1], SpoolConfig())
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer instead of returning EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))
ids = [spool.append("t", bytes([i % 251]) * 3000, "samples", seq=i) for i in range(3000)]
print(json.dumps({"ids": ids, "stats": spool.stats().as_dict(), "seqs": [r.seq for r in spool.read(0, 10000)]}))
spool.close()
"""


def test_a_file_size_limit_is_an_io_error_the_spool_lives_with(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes write(2) fail with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE, not SQLITE_FULL:
    the spool treats it alike. Run in a child: the limit and SIGXFSZ are per process."""
    run = subprocess.run(
        [sys.executable, "-c", _EFBIG_CHILD, str(tmp_path / "s.sqlite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    got = json.loads(run.stdout)
    stats = got["stats"]
    assert "I/O error" in stats["disk_fault"] or "full" in stats["disk_fault"], stats
    assert "refuses writes" in run.stderr and run.stderr.count("refuses writes") == 1
    stored = [i for i in got["ids"] if i is not None]
    seqs = got["seqs"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "what is kept is the newest, without a gap"
    assert seqs[-1] == 2999 or stats["dropped_unwritable"]["samples"] > 0
    assert len(stored) + stats["dropped_unwritable"]["samples"] == 3000, "every append is stored or counted"
    assert stats["dropped_full"]["samples"] == len(stored) - len(seqs), "every stored one is kept or counted"


def test_a_failing_wal_fsync_is_logged_once_counted_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """fsync(2) of a character device fails with EINVAL: a real refusal from the kernel, as EIO would be."""
    (tmp_path / "s.sqlite-wal").symlink_to("/dev/null")
    sync = WalSyncer(tmp_path / "s.sqlite")
    for _ in range(4):
        sync.dirty = True
        sync.soon()
        deadline = time.monotonic() + 10
        while sync._in_flight is not None and not sync._in_flight.done() and time.monotonic() < deadline:
            time.sleep(0.005)
    sync.dirty = True
    sync.close()
    assert sync.failures >= 4
    failed = [r for r in caplog.records if "fsync of the WAL failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 50, os.urandom(65536), b"SQLite format 3\x00" + os.urandom(8000)],
    ids=["text", "random", "bad-header"],
)
def test_a_corrupt_spool_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(content)
    with pytest.raises(SpoolError, match=r"spool\.sqlite: cannot open: not a sound SQLite spool"):
        SqliteSpool.open(path, SpoolConfig())  # without replace_corrupt: refused, the file left alone
    assert path.read_bytes() == content

    spool = SqliteSpool.open(path, SpoolConfig(), replace_corrupt=True)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("spool.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content, "kept for inspection, unchanged"
    stats = spool.stats()
    assert stats.corrupt_replaced == 1 and stats.replaced_file == aside[0].name and stats.depth == 0
    assert spool.append(TOPIC, b"x", "samples") == 1
    spool.close()
    lines = [r.getMessage() for r in caplog.records if "moved it aside" in r.getMessage()]
    assert len(lines) == 1 and str(path) in lines[0] and aside[0].name in lines[0]


def test_a_truncated_spool_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = SqliteSpool.open(path, SpoolConfig())
    for i in range(300):
        spool.append(TOPIC, bytes([i % 251]) * 1500, "samples")
    spool.close()  # checkpointed into the database file, WAL removed
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)
    spool = SqliteSpool.open(path, SpoolConfig(), replace_corrupt=True)
    assert spool.stats().corrupt_replaced == 1 and spool.stats().depth == 0
    spool.close()


def test_a_spool_the_agent_cannot_write_is_an_operator_problem(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(StateDirError, match=r"dir\.sqlite: cannot open .*writable"):
        SqliteSpool.open(tmp_path / "dir.sqlite", SpoolConfig())


def test_the_state_dir_lock_names_its_holder_and_is_free_again_after_release(tmp_path: Path) -> None:
    first = StateDirLock.acquire(tmp_path / "state")
    assert (tmp_path / "state" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(StateDirError, match=rf"in use by another energy-agent \(PID {os.getpid()},"):
        StateDirLock.acquire(tmp_path / "state")
    first.release()
    assert (tmp_path / "state" / LOCK_FILE).read_text() == "", "no stale PID left behind"
    StateDirLock.acquire(tmp_path / "state").release()


def test_a_state_dir_that_cannot_be_created_is_an_operator_problem(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StateDirError, match=r"state directory .*file/state: cannot be created: .*writable"):
        StateDirLock.acquire(tmp_path / "file" / "state")


def test_the_lock_is_held_by_the_spool_until_it_is_closed(tmp_path: Path) -> None:
    lock = StateDirLock.acquire(tmp_path)
    spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig(), lock=lock)
    with pytest.raises(StateDirError):
        StateDirLock.acquire(tmp_path)
    spool.close()
    StateDirLock.acquire(tmp_path).release()


def test_a_reader_beside_the_writer_needs_no_lock(tmp_path: Path) -> None:
    lock = StateDirLock.acquire(tmp_path)
    spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig(), lock=lock)
    spool.append(TOPIC, b"x", "samples")
    db = sqlite3.connect(f"file:{tmp_path / 'spool.sqlite'}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM records").fetchone() == (1,)
    db.close()
    spool.close()


def test_a_spool_whose_directory_is_removed_is_written_again_at_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite would go on in the removed file, which the next start never finds. The spool makes the directory
    again and writes what it holds there: records, ids and counters; the state-dir lock is taken on a fresh file."""
    clock = Clock()
    state = tmp_path / "state"
    spool = SqliteSpool.open(
        state / "spool.sqlite", SpoolConfig(max_bytes=65536), clock, lock=StateDirLock.acquire(state)
    )
    for i in range(40):
        spool.append(TOPIC, bytes([i]) * 2000, "samples", seq=i)
    expected = spool.stats()
    assert expected.dropped_full["samples"] > 0
    shutil.rmtree(state)
    clock.now += 6
    last = spool.append(TOPIC, b"after", "samples", seq=40)
    assert (state / "spool.sqlite").exists() and (state / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(StateDirError, match="in use by another energy-agent"):
        StateDirLock.acquire(state)
    spool.append(TOPIC, b"later", "samples", seq=41)
    spool.close()
    reopened = SqliteSpool.open(state / "spool.sqlite", SpoolConfig(max_bytes=65536), clock)
    records = reopened.read(0, 1000)
    assert [r.seq for r in records][-2:] == [40, 41] and records[-2].id == last
    assert len(records) == expected.depth + 2, "nothing was lost (the two small ones fit without a drop)"
    assert reopened.stats().dropped_full == expected.dropped_full, "the counters came along"
    reopened.close()
    lines = [r.getMessage() for r in caplog.records if "was removed while the agent runs" in r.getMessage()]
    assert len(lines) == 1 and f"wrote the {expected.depth + 1} messages" in lines[0]
