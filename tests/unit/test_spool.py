"""SqliteSpool behaviour by example: drop policy and its counters, expiry, episodes logged once, errors, and a
power-cut emulation (a WAL cut at any byte opens to a consistent earlier state)."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError
from agent.spool.base import RECORD_OVERHEAD_BYTES
from agent.spool.sqlite import SqliteSpool

TOPIC = "plant/s1/gw1/m1/samples"
KPI_TOPIC = "plant/s1/gw1/kpi"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def size_of(topic: str, payload: bytes) -> int:
    return len(topic) + len(payload) + RECORD_OVERHEAD_BYTES


def test_full_spool_drops_oldest_samples_before_any_kpi_and_counts_exactly(tmp_path: Path) -> None:
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_bytes=65536), Clock())
    kpi_ids = [spool.append(KPI_TOPIC, b"k" * 900, "kpi", seq=i) for i in range(5)]
    sample_ids = [spool.append(TOPIC, b"s" * 3000, "samples", seq=5 + i) for i in range(40)]
    per_sample = size_of(TOPIC, b"s" * 3000)
    stored = spool.read(0, 1000)
    kept_samples = [r.id for r in stored if r.kind == "samples"]
    stats = spool.stats()
    assert [r.id for r in stored if r.kind == "kpi"] == kpi_ids, "no KPI is dropped while samples remain"
    assert kept_samples == sample_ids[-len(kept_samples) :], "the oldest samples go first"
    assert stats.dropped_full == {"samples": 40 - len(kept_samples), "kpi": 0, "status": 0}
    assert stats.bytes == 5 * size_of(KPI_TOPIC, b"k" * 900) + len(kept_samples) * per_sample <= 65536
    spool.close()
    reopened = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_bytes=65536), Clock())
    assert reopened.stats().dropped_full == stats.dropped_full, "counters persist"
    reopened.close()


def test_kpis_are_dropped_only_when_no_sample_is_left(tmp_path: Path) -> None:
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_bytes=65536), Clock())
    spool.append(TOPIC, b"s" * 1000, "samples")
    for i in range(40):
        spool.append(KPI_TOPIC, b"k" * 3000, "kpi", seq=i)
    stats = spool.stats()
    assert stats.dropped_full["samples"] == 1 and stats.dropped_full["kpi"] > 0
    assert stats.depth_by_kind["samples"] == 0
    spool.close()


def test_full_episode_is_logged_once_and_its_end_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_bytes=65536), Clock())
    for _ in range(200):
        spool.append(TOPIC, b"s" * 3000, "samples")
    assert spool.stats().dropped_full["samples"] > 150
    full = [r for r in caplog.records if "full at" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING
    spool.ack(r.id for r in spool.read(0, 1000))
    spool.append(TOPIC, b"s", "samples")
    ended = [r.getMessage() for r in caplog.records if "no longer full" in r.getMessage()]
    assert len(ended) == 1 and f"{spool.stats().dropped_full['samples']} samples" in ended[0]
    spool.close()


def test_old_messages_expire_counted_per_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_age_s=3600), clock)
    spool.append(TOPIC, b"a", "samples")
    spool.append(KPI_TOPIC, b"b", "kpi")
    clock.now += 1800
    spool.append(TOPIC, b"c", "samples")
    clock.now += 1801
    spool.append(TOPIC, b"d", "samples")  # the append's own expiry pass drops the first two
    assert [r.payload for r in spool.read(0, 10)] == [b"c", b"d"]
    assert spool.stats().dropped_expired == {"samples": 1, "kpi": 1, "status": 0}
    assert spool.stats().oldest_age_s == pytest.approx(1801)
    assert sum("older than" in r.getMessage() for r in caplog.records) == 1
    spool.close()


def test_ids_keep_growing_after_everything_was_acked_and_reopened(tmp_path: Path) -> None:
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), Clock())
    first = spool.append(TOPIC, b"1", "samples")
    assert first is not None
    spool.ack([first])
    spool.close()
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), Clock())
    assert spool.last_id() == first
    assert (spool.append(TOPIC, b"2", "samples") or 0) > first
    assert spool.read(0, 10, upto_id=first) == []
    spool.close()


def test_a_message_larger_than_the_bound_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(max_bytes=65536), Clock())
    spool.append(TOPIC, b"keep", "samples")
    with pytest.raises(SpoolError, match="larger than max_bytes"):
        spool.append(TOPIC, b"x" * 70000, "samples")
    assert [r.payload for r in spool.read(0, 10)] == [b"keep"]
    assert spool.stats().dropped_total == 0
    spool.close()


def test_unopenable_spool_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(SpoolError, match=r"dir\.sqlite: cannot open"):
        SqliteSpool.open(tmp_path / "dir.sqlite", SpoolConfig())


def test_a_spool_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig()).close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.close()
    with pytest.raises(SpoolError, match="schema version 99"):
        SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A spool after 150 appends and some acks, as files on disk (db + WAL), never checkpointed."""
    folder = tmp_path_factory.mktemp("history")
    spool = SqliteSpool.open(folder / "s.sqlite", SpoolConfig(), Clock())
    payloads = [f"payload-{i:04d}-".encode() * 20 for i in range(150)]
    for i, p in enumerate(payloads):
        spool.append(TOPIC, p, "samples", seq=i)
        if i % 10 == 9:
            spool.ack([r.id for r in spool.read(0, 3)])
    shutil.copyfile(folder / "s.sqlite", folder / "snap.sqlite")
    shutil.copyfile(folder / "s.sqlite-wal", folder / "snap.sqlite-wal")
    spool.close()
    return folder, payloads


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0))
def test_a_wal_cut_anywhere_opens_to_a_consistent_earlier_state(
    history: tuple[Path, list[bytes]], tmp_path: Path, cut: float
) -> None:
    """Power-cut emulation: the unsynced tail of the WAL is lost at an arbitrary byte. The spool opens, the
    database is intact, and what it holds is exactly the history up to some commit: payloads unchanged, ids in
    order, totals recomputed from what is there."""
    folder, payloads = history
    case = tmp_path / f"cut-{cut}"
    case.mkdir()
    shutil.copyfile(folder / "snap.sqlite", case / "s.sqlite")
    wal = (folder / "snap.sqlite-wal").read_bytes()
    (case / "s.sqlite-wal").write_bytes(wal[: int(len(wal) * cut)])
    spool = SqliteSpool.open(case / "s.sqlite", SpoolConfig(), Clock())
    records = spool.read(0, 1000)
    assert spool._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for r in records:
        assert r.seq is not None and r.payload == payloads[r.seq]
    assert [r.id for r in records] == sorted(r.id for r in records)
    assert spool.stats().depth == len(records)
    assert spool.stats().bytes == sum(size_of(r.topic, r.payload) for r in records)
    new = spool.append(TOPIC, b"after the cut", "samples")
    assert new is not None and new > max((r.id for r in records), default=0)
    spool.close()


def test_group_commit_stores_a_turn_in_one_transaction_and_acks_ride_on_the_next_write(tmp_path: Path) -> None:
    """Issue 19: ``append_many`` is one transaction (one commit for a turn's polls), acks cost no commit of their
    own (written with the next append or by ``flush``), and a queued ack is never read back for publishing."""
    path = tmp_path / "s.sqlite"
    spool = SqliteSpool.open(path, SpoolConfig(), Clock())
    before = spool._db.total_changes
    stored = spool.append_many([(TOPIC, f"p{i}".encode(), "samples", i, None) for i in range(50)])
    ids = [i for i in stored if i is not None]
    assert ids == list(range(1, 51)) and spool._db.total_changes - before >= 50
    wal = path.with_name("s.sqlite-wal")
    size_after_turn = wal.stat().st_size
    spool.ack(ids[:10])
    assert wal.stat().st_size == size_after_turn, "an ack alone writes nothing"
    assert [r.id for r in spool.read(0, 5)] == ids[10:15], "queued acks are never read back"
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM records").fetchone() == (50,), "not yet on disk"
    spool.append(TOPIC, b"next", "samples", 50)
    assert reader.execute("SELECT count(*) FROM records").fetchone() == (41,), "written with the next append"
    spool.ack(ids[10:20])
    spool.flush()
    assert reader.execute("SELECT count(*) FROM records").fetchone() == (31,), "or by the once-a-second flush"
    reader.close()
    spool.ack(ids[20:30])
    spool.close()
    reopened = SqliteSpool.open(path, SpoolConfig(), Clock())
    assert reopened.stats().depth == 21 and reopened.stats().dropped_total == 0, "close writes the queued acks"
    reopened.close()


def test_acks_queued_at_close_are_written_by_it_and_the_closed_spool_still_answers_stats(tmp_path: Path) -> None:
    """A stopped agent's health (a status after stop, a test reading the final figures) asks the closed spool
    for its stats: the acks close() wrote must not be written again into the closed file, and a PUBACK that
    arrives after close stays unwritten (that record is sent again after the restart, as after kill -9)."""
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), Clock())
    ids = [i for i in (spool.append(TOPIC, b"x", "samples", seq=n) for n in range(3)) if i is not None]
    assert len(ids) == 3
    spool.ack(ids[:2])  # queued, not yet written
    spool.close()
    spool.stats()
    spool.ack(ids[2:])  # after close
    spool.stats()
    reopened = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), Clock())
    assert [r.id for r in reopened.read(0, 10)] == ids[2:]
    reopened.close()
