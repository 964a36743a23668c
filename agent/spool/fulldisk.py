"""The spool's fault path for a filesystem that refuses writes: the episode (logged once), appends within the space
the spool holds (acked records first, then the oldest by the declared order, more on each retry), the reserve file
given back and made again, and the acks and counts the disk refused, written with a later transaction.
``SqliteSpool`` builds on this class; the records table and its transactions are ``records.RecordStore``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from agent.config.spool import SpoolConfig
from agent.spool.base import Kind
from agent.spool.episodes import DiskEpisode, Gone
from agent.spool.records import RecordStore, StorageFault, Txn
from agent.spool.storage import Reserve, free_bytes

_RETRY_S = 1.0  # on a disk that refuses everything, one more try per second (other appends are counted at once)
_PROBE_S = 5.0  # while keeping to its space, how often the spool looks whether the filesystem has room again


class FullDiskStore(RecordStore):
    """Not used alone: ``SqliteSpool`` is the spool."""

    def __init__(
        self, path: Path, db: sqlite3.Connection, config: SpoolConfig, clock: Callable[[], float], reserve: Reserve
    ) -> None:
        super().__init__(path, db, config, clock)
        self._reserve = reserve
        self._disk: DiskEpisode | None = None
        self._reserve_released = False  # in the current disk episode
        self._unacked: set[int] = set()  # acked ids not deleted yet: written with the next transaction
        self._closed = False  # close() ran: nothing is written any more

    def _housekeeping(self) -> None:
        raise NotImplementedError  # SqliteSpool's

    def _pending_saved(self, acked: Gone) -> None:
        """After a commit that ran ``_save_pending``: the queued acks and counts are on disk now."""
        self._unsaved = {}
        self._unacked = set()
        self._forget(acked)

    # -- a filesystem that refuses writes ---------------------------------------------------------------------

    def _disk_refused(self, fault: StorageFault) -> None:
        """Start an episode (logged once): give back the reserve and keep to the bytes the spool holds now."""
        disk = self._disk
        if disk is not None:
            if disk.cap is None:  # space seemed back, but it is not
                disk.cap = min(self._bytes, self._config.max_bytes)
            return
        released = self._reserve.size >> 20 if self._reserve.release() else 0
        self._reserve_released = bool(released)
        cap = min(self._bytes, self._config.max_bytes)
        self._disk = DiskEpisode(self.path, fault.reason, cap, self._clock(), self._bytes, released)

    def _append_on_full_disk(
        self, topic: str, payload: bytes, kind: Kind, seq: int | None, ts: float, size: int
    ) -> int | None:
        """During an episode: append within the space the spool holds (deleting acked records first, then the
        oldest by policy, more on each retry), or try to grow when space seemed back. None: not stored, counted."""
        disk = self._disk
        assert disk is not None
        now = self._clock()
        if disk.blocked_at is None or abs(now - disk.blocked_at) >= _RETRY_S or disk.cap is None:
            disk.blocked_at = None
            limits = [self._config.max_bytes] if disk.cap is None else []
            cap = min(self._config.max_bytes, disk.cap if disk.cap is not None else self._bytes)
            limits += [max(size, cap - extra) for extra in (0, 15 * size, 255 * size)]
            for n, limit in enumerate(limits):
                if n:  # a retry: a complete checkpoint lets the WAL start over in the file space it holds
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                try:
                    rid = self._insert_within(topic, payload, kind, seq, ts, size, limit)
                except StorageFault as fault:
                    self._disk_refused(fault)
                    continue
                if limit == self._config.max_bytes and disk.cap is None:
                    self._disk = None
                    self._reserve_released = False
                    disk.end(self.path)
                else:
                    disk.cap = self._bytes
                self._housekeeping()
                return rid
            disk.blocked_at = now
        self._unsaved[f"dropped_unwritable_{kind}"] = self._unsaved.get(f"dropped_unwritable_{kind}", 0) + 1
        disk.unstored[kind] = disk.unstored.get(kind, 0) + 1
        self._housekeeping()
        return None

    def _insert_within(
        self, topic: str, payload: bytes, kind: Kind, seq: int | None, ts: float, size: int, limit: int
    ) -> int:
        disk = self._disk
        assert disk is not None
        with self._transaction("append") as txn:
            acked = self._save_pending(txn)
            dropped = self._make_room(size, limit, sum(g[2] for g in acked))
            rid = self._insert(topic, payload, kind, seq, ts, size)
            self._bump_counters(txn, dropped, "full")
        self._pending_saved(acked)
        self._forget(dropped)
        for _, k, _ in dropped:
            disk.dropped[k] = disk.dropped.get(k, 0) + 1
        self._appended(rid, kind, size)
        return rid

    def _save_pending(self, txn: Txn) -> Gone:
        """Inside a transaction: store the counts and delete the acked records the disk refused before."""
        self._add_counters(txn, self._unsaved)
        return self._delete(sorted(self._unacked))

    def _probe_disk(self, disk: DiskEpisode) -> None:
        """Every few seconds: when the filesystem has room for the reserve and as much again, make the reserve and
        let the next append try to grow the spool."""
        now = self._clock()
        if disk.cap is None or abs(now - disk.last_probe) < _PROBE_S:
            return
        disk.last_probe = now
        free = free_bytes(self.path.parent)
        if (free is None or free >= 2 * self._reserve.size + (1 << 20)) and self._reserve.ensure():
            disk.cap = None
