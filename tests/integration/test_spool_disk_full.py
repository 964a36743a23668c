"""The spool on a real full filesystem (a small tmpfs: write(2) fails with ENOSPC, which SQLite reports as
SQLITE_FULL). The spool must not raise, must apply the drop policy within the space it holds, count every drop
and every message it could not store, log the episode once, and grow again when space comes back."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
from agent.spool.storage import RESERVE_BYTES
from tests.fsmount import fill, resize, tmpfs

pytestmark = pytest.mark.e2e  # mounts real tmpfs filesystems

TOPIC = "plant/s1/gw1/m1/samples"
KPI_TOPIC = "plant/s1/gw1/kpi"
MiB = 1 << 20
N = 6000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def payload(seq: int) -> bytes:
    return f"{seq:08d}".encode() * 250  # 2000 B, like one poll of 20 points


def files_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name != "filler")


def test_a_full_disk_keeps_the_newest_within_the_space_held_then_grows_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "fs", 16 * MiB) as fs:
        clock = Clock()
        spool = SqliteSpool.open(fs / "spool.sqlite", SpoolConfig(), clock, reserve_bytes=RESERVE_BYTES)
        assert (fs / "spool.sqlite.reserve").stat().st_size == RESERVE_BYTES
        kpis = [spool.append(KPI_TOPIC, b"k" * 500, "kpi", seq=i) for i in range(3)]
        ids = [spool.append(TOPIC, payload(i), "samples", seq=i) for i in range(N)]  # ~12 MB into 8 MiB free

        assert None not in ids, "every append was stored: the oldest samples made room"
        stats = spool.stats()
        records = spool.read(0, 100_000)
        seqs = [r.seq for r in records if r.kind == "samples"]
        assert "full" in stats.disk_fault
        assert [r.id for r in records if r.kind == "kpi"] == kpis, "KPIs go last"
        assert seqs == list(range(N - len(seqs), N)), "the newest samples, without a gap"
        assert all(r.payload == payload(r.seq) for r in records if r.kind == "samples" and r.seq is not None)
        assert stats.dropped_full == {"samples": N - len(seqs), "kpi": 0, "status": 0}
        assert stats.dropped_unwritable == {"samples": 0, "kpi": 0, "status": 0}
        assert not (fs / "spool.sqlite.reserve").exists(), "the reserve was given back to let SQLite checkpoint"
        assert files_bytes(fs) <= 16 * MiB
        assert sum("refuses writes" in r.getMessage() for r in caplog.records) == 1, "one line per episode"

        resize(fs, 64 * MiB)  # space comes back
        clock.now += 6
        spool.append(TOPIC, payload(N), "samples", seq=N)
        grown = spool.stats()
        more = [spool.append(TOPIC, payload(N + 1 + i), "samples", seq=N + 1 + i) for i in range(2000)]
        assert None not in more
        assert spool.stats().depth == grown.depth + 2000 and spool.stats().dropped_full == grown.dropped_full
        assert spool.stats().disk_fault == ""
        assert (fs / "spool.sqlite.reserve").stat().st_size == RESERVE_BYTES, "the reserve is made again"
        ended = [r.getMessage() for r in caplog.records if "takes writes again" in r.getMessage()]
        assert len(ended) == 1 and f"{grown.dropped_full['samples']} samples" in ended[0]
        spool.close()
        reopened = SqliteSpool.open(fs / "spool.sqlite", SpoolConfig(), clock)
        assert reopened.stats().depth == grown.depth + 2000
        assert reopened.stats().dropped_full == grown.dropped_full
        reopened.close()


def test_a_disk_with_no_room_at_all_counts_what_it_cannot_store_and_loses_nothing_spooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No reserve, and another process takes every free block: even a delete cannot be written. Appends are
    counted as unstored, acks are kept until they can be written, what was spooled stays, and nothing raises."""
    with tmpfs(tmp_path / "fs", 16 * MiB) as fs:
        clock = Clock()
        spool = SqliteSpool.open(fs / "spool.sqlite", SpoolConfig(), clock)
        first = [spool.append(TOPIC, payload(i), "samples", seq=i) for i in range(300)]
        filler = fill(fs)
        results = []
        for i in range(300, 600):
            results.append(spool.append(TOPIC, payload(i), "samples", seq=i))
            clock.now += 0.25  # four tries a second would be made; the spool tries once a second
        stuck = spool.stats()
        assert stuck.disk_fault, "the disk refused"
        assert stuck.dropped_unwritable["samples"] > 0
        stored = [r for r in results if r is not None]
        assert len(stored) + stuck.dropped_unwritable["samples"] == 300, "each append is stored or counted"
        kept = {r.seq: r.payload for r in spool.read(0, 10_000)}
        assert stuck.depth == len(kept) == 600 - stuck.dropped_unwritable["samples"] - stuck.dropped_full["samples"]
        assert all(kept[s] == payload(s) for s in kept if s is not None), "what was spooled is intact"
        acked = [i for i in first[:50] if i is not None]
        spool.ack(acked)  # the disk may refuse the delete: kept and retried, never raised

        filler.unlink()
        clock.now += 6
        spool.append(TOPIC, payload(600), "samples", seq=600)
        spool.append(TOPIC, payload(601), "samples", seq=601)
        after = spool.stats()
        assert after.disk_fault == ""
        remaining = {r.id for r in spool.read(0, 10_000)}
        assert not remaining & set(acked), "the acked records were deleted once the disk took writes"
        assert after.dropped_full == stuck.dropped_full, "acked records are not counted as dropped"
        spool.close()
        reopened = SqliteSpool.open(fs / "spool.sqlite", SpoolConfig(), clock)
        assert reopened.stats().dropped_unwritable == stuck.dropped_unwritable, "the unstored count was saved"
        reopened.close()
    assert sum("refuses writes" in r.getMessage() for r in caplog.records) == 1
    assert any(r.levelno == logging.WARNING and "could not store" in r.getMessage() for r in caplog.records)


def test_max_bytes_still_bounds_the_spool_on_a_filesystem_smaller_than_it_and_larger(tmp_path: Path) -> None:
    """max_bytes below the filesystem's size: the ordinary bound applies and the disk never fills. The other way
    round is the first test (max_bytes 1 GiB on 16 MiB)."""
    with tmpfs(tmp_path / "fs", 24 * MiB) as fs:
        spool = SqliteSpool.open(fs / "spool.sqlite", SpoolConfig(max_bytes=2 * MiB), reserve_bytes=RESERVE_BYTES)
        for i in range(2000):
            assert spool.append(TOPIC, payload(i), "samples", seq=i) is not None
        stats = spool.stats()
        assert stats.bytes <= 2 * MiB and stats.disk_fault == "" and stats.dropped_full["samples"] > 0
        assert stats.depth + stats.dropped_full["samples"] == 2000
        st = os.statvfs(fs)
        assert st.f_bavail * st.f_frsize > 0
        spool.close()
