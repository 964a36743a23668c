"""SqliteSpool: the Spool protocol on one SQLite database in WAL mode.

Durability (see ``agent.config.spool`` for the two fsync policies): each append, ack and drop is one
transaction, so after kill -9 the spool holds exactly what was appended and not acked, with the drop counters
that match. ``synchronous=NORMAL`` in WAL mode cannot corrupt the database on a power cut; it can only roll back
the last commits that were not fsynced yet, which the ``interval`` policy bounds (its fsync runs on a helper
thread: ``agent.spool.walsync``).

Bytes are accounted as ``len(topic) + len(payload) + RECORD_OVERHEAD_BYTES`` per record; SQLite reuses freed
pages, so the file stays near the high-water mark of that figure (plus the WAL, capped by ``journal_size_limit``).

When the filesystem refuses a write (full, read-only, I/O error; ``agent.spool.storage``) nothing raises: the
spool gives back its reserve, keeps to the space it already holds by dropping the oldest records in the declared
order, counts every drop, logs the episode once, and grows again once space is back. A message that cannot be
stored even so is counted as ``dropped_unwritable`` and ``append`` returns None; acks the disk refused are retried.
A corrupt file is moved aside on ``open(replace_corrupt=True)`` and a new spool started; a file removed while
open is written again at its path.

The records table, its transactions and in-memory totals are the base class ``records.RecordStore``; the file,
the fsync thread, the filesystem helpers and the episode logging live in ``schema``, ``walsync``, ``storage`` and
``episodes``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError
from agent.spool.base import KINDS, RECORD_OVERHEAD_BYTES, Kind, NewRecord, SpooledRecord, SpoolStats
from agent.spool.episodes import BoundEpisodes, DiskEpisode, Gone
from agent.spool.lock import StateDirLock
from agent.spool.records import RecordStore, StorageFault, Txn
from agent.spool.schema import connect, open_error
from agent.spool.storage import Reserve, free_bytes, is_corrupt, move_aside, refused
from agent.spool.walsync import WalSyncer

log = logging.getLogger(__name__)

_EXPIRE_EVERY_S = 1.0
_RETRY_S = 1.0  # on a disk that refuses everything, one more try per second (other appends are counted at once)
_PROBE_S = 5.0
_ACK_BATCH = 4096  # queued acks written at once without waiting for the next transaction  # while keeping to its space, how often the spool looks whether the filesystem has room again


class SqliteSpool(RecordStore):
    """The durable spool. Create with :meth:`open`; one instance per file, used from one thread."""

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        config: SpoolConfig,
        clock: Callable[[], float],
        reserve: Reserve | None = None,
    ) -> None:
        super().__init__(path, db, config, clock)
        self._reserve = reserve or Reserve(path.with_name(f"{path.name}.reserve"), 0)
        self._lock: StateDirLock | None = None
        self._last_expire: float | None = None  # injected-clock time of the last expiry pass
        self._bounds = BoundEpisodes(path, config.max_bytes, config.max_age_s)
        self._disk: DiskEpisode | None = None
        self._unacked: set[int] = set()  # acked ids not deleted yet: written with the next transaction
        self._last_look = clock()  # when the spool last looked that its file is still there
        self._recreate_failing = False
        self._load()

    @classmethod
    def open(
        cls,
        path: str | Path,
        config: SpoolConfig,
        clock: Callable[[], float] = time.time,
        *,
        replace_corrupt: bool = False,
        reserve_bytes: int = 0,
        lock: StateDirLock | None = None,
    ) -> SqliteSpool:
        """Open or create the spool file and recover it. Raises SpoolError naming the file (StateDirError when an
        operator must make it writable). With ``replace_corrupt``, a file that is not a sound spool is moved aside
        and a new one started. ``reserve_bytes`` > 0 keeps a reserve file for a full disk. The spool releases
        ``lock`` when it is closed."""
        path = Path(path)
        reserve = Reserve(path.with_name(f"{path.name}.reserve"), reserve_bytes)
        try:
            try:
                spool = cls._open(path, config, clock, reserve)
            except sqlite3.DatabaseError as exc:
                if not (replace_corrupt and is_corrupt(exc)):
                    raise
                aside = move_aside(path, clock())
                log.error(
                    "spool %s: not a sound SQLite spool (%s); moved it aside to %s for inspection and started a new "
                    "spool; the messages it held will not be published",
                    path,
                    exc,
                    aside.name,
                )
                spool = cls._open(path, config, clock, reserve)
                spool._record_replacement(aside)
        except sqlite3.Error as exc:
            raise open_error(path, exc) from exc
        except OSError as exc:
            raise refused(exc, f"spool {path}: cannot open: {exc.strerror}") from exc
        reserve.ensure()
        spool._lock = lock
        return spool

    @classmethod
    def _open(cls, path: Path, config: SpoolConfig, clock: Callable[[], float], reserve: Reserve) -> SqliteSpool:
        db = connect(path, config)
        try:
            return cls(path, db, config, clock, reserve)
        except BaseException:
            db.close()
            raise

    # -- Spool protocol ---------------------------------------------------------------------------------------

    def append(
        self, topic: str, payload: bytes, kind: Kind, seq: int | None = None, ts: float | None = None
    ) -> int | None:
        return self.append_many([(topic, payload, kind, seq, ts)])[0]

    def append_many(self, items: Sequence[NewRecord]) -> list[int | None]:
        """Group commit: store every item in one transaction (with the acks queued since the last write), in order;
        returns their ids (None for one the disk refused, counted). One fsync window covers them all."""
        now = self._clock()
        sized = []
        for topic, payload, kind, seq, ts in items:
            if kind not in KINDS:
                raise ValueError(f"spool: unknown kind {kind!r}")
            size = len(topic.encode()) + len(payload) + RECORD_OVERHEAD_BYTES
            if size > self._config.max_bytes:
                raise SpoolError(f"spool {self.path}: a {size} B message is larger than max_bytes")
            sized.append((topic, payload, kind, seq, now if ts is None else ts, size))
        total = sum(r[5] for r in sized)
        if self._disk is not None or (len(sized) > 1 and total > self._config.max_bytes):
            return [self._append_one(*r) for r in sized]
        try:
            with self._transaction("append") as txn:
                acked = self._save_pending(txn)
                dropped = self._make_room(total, self._config.max_bytes, sum(g[2] for g in acked))
                rids = [self._insert(*r) for r in sized]
                self._bump_counters(txn, dropped, "full")
        except StorageFault as fault:
            self._disk_refused(fault)
            return [self._append_one(*r) for r in sized]
        self._pending_saved(acked)
        for rid, r in zip(rids, sized, strict=True):
            self._appended(rid, r[2], r[5])
        self._forget(dropped)
        self._bounds.note_full(dropped, self._bytes)
        self._housekeeping()
        return list(rids)

    def _append_one(self, topic: str, payload: bytes, kind: Kind, seq: int | None, ts: float, size: int) -> int | None:
        if self._disk is None:
            try:
                with self._transaction("append") as txn:
                    acked = self._save_pending(txn)
                    dropped = self._make_room(size, self._config.max_bytes, sum(g[2] for g in acked))
                    rid = self._insert(topic, payload, kind, seq, ts, size)
                    self._bump_counters(txn, dropped, "full")
            except StorageFault as fault:
                self._disk_refused(fault)
            else:
                self._pending_saved(acked)
                self._appended(rid, kind, size)
                self._forget(dropped)
                self._bounds.note_full(dropped, self._bytes)
                self._housekeeping()
                return rid
        return self._append_on_full_disk(topic, payload, kind, seq, ts, size)

    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> list[SpooledRecord]:
        self._housekeeping()
        upto = self._last_id if upto_id is None else upto_id
        try:
            rows = self._db.execute(
                "SELECT id, topic, payload, kind, seq, ts FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after_id, upto, limit + len(self._unacked)),
            ).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: read failed: {exc}") from exc
        acked = self._unacked
        return [SpooledRecord(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows if r[0] not in acked][:limit]

    def last_id(self) -> int:
        return self._last_id

    def ack(self, ids: Iterable[int]) -> None:
        """Queue the deletion: it is written with the next transaction (an append, the once-a-second ``flush``,
        ``stats``, ``close``), so acks cost no commit of their own; ``read`` never returns a queued id. After kill -9
        the queued records are published again (the same seq: the centre keeps the first)."""
        self._unacked.update(ids)
        if len(self._unacked) >= _ACK_BATCH:
            self._commit_acks()

    def _commit_acks(self) -> None:
        if not self._unacked and not self._unsaved:
            return
        try:
            with self._transaction("ack") as txn:
                gone = self._save_pending(txn)
        except StorageFault as fault:
            self._disk_refused(fault)  # the records stay until a write succeeds; a restart would resend them
            return
        self._pending_saved(gone)
        self._housekeeping()

    def _pending_saved(self, acked: Gone) -> None:
        """After a commit that ran ``_save_pending``: the queued acks and counts are on disk now."""
        self._unsaved = {}
        self._unacked = set()
        self._forget(acked)

    def stats(self) -> SpoolStats:
        self._commit_acks()
        try:
            oldest = self._db.execute("SELECT min(ts) FROM records").fetchone()[0]
        except sqlite3.Error:
            oldest = None
        counters = self._counters_now()
        return SpoolStats(
            path=str(self.path),
            depth=sum(self._depth.values()),
            bytes=self._bytes,
            max_bytes=self._config.max_bytes,
            oldest_ts=oldest,
            oldest_age_s=None if oldest is None else max(0.0, self._clock() - oldest),
            depth_by_kind=dict(self._depth),
            dropped_full={k: counters.get(f"dropped_full_{k}", 0) for k in KINDS},
            dropped_expired={k: counters.get(f"dropped_expired_{k}", 0) for k in KINDS},
            dropped_unwritable={k: counters.get(f"dropped_unwritable_{k}", 0) for k in KINDS},
            fsync=self._fsync_text(),
            disk_fault=self._disk.reason if self._disk is not None else "",
            fsync_failures=self._sync.failures,
            corrupt_replaced=counters.get("corrupt_replaced", 0),
            replaced_file=self._replaced,
        )

    def flush(self) -> None:
        """Start an fsync of the WAL if anything was committed since the last one (on the helper thread). The
        publisher calls it once a second, which bounds the power-cut window when appends stop."""
        self._commit_acks()
        if self._config.fsync == "interval":
            self._sync.soon()

    def expire(self) -> int:
        """Drop records older than ``max_age_s`` now; returns how many. Spool calls run it once per clock second."""
        now = self._clock()
        self._last_expire = now
        cutoff = now - self._config.max_age_s
        try:
            with self._transaction("expiry") as txn:
                acked = self._save_pending(txn)  # acked records are deleted as acked, not counted as expired
                rows = self._db.execute("SELECT id, kind, size FROM records WHERE ts < ?", (cutoff,)).fetchall()
                gone = self._delete([r[0] for r in rows])
                self._bump_counters(txn, gone, "expired")
                txn.changed = bool(gone or acked)  # an idle spool's expiry pass must not cause an fsync every second
        except StorageFault as fault:
            self._disk_refused(fault)
            return 0  # tried again in a second
        self._pending_saved(acked)
        self._forget(gone)
        self._bounds.note_expired(gone)
        return len(gone)

    def close(self) -> None:
        try:
            if self._unsaved or self._unacked:
                with contextlib.suppress(StorageFault), self._transaction("close") as txn:
                    self._save_pending(txn)
            self._sync.close()
        finally:
            self._db.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    # -- internals --------------------------------------------------------------------------------------------

    def _record_replacement(self, aside: Path) -> None:
        with contextlib.suppress(StorageFault), self._transaction("open") as txn:  # a full disk: not recorded
            self._add_counters(txn, {"corrupt_replaced": 1})
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('replaced', ?)", (aside.name,))
        self._replaced = aside.name

    # -- a filesystem that refuses writes ---------------------------------------------------------------------

    def _disk_refused(self, fault: StorageFault) -> None:
        """Start an episode (logged once): give back the reserve and keep to the bytes the spool holds now."""
        disk = self._disk
        if disk is not None:
            if disk.cap is None:  # space seemed back, but it is not
                disk.cap = min(self._bytes, self._config.max_bytes)
            return
        released = self._reserve.size >> 20 if self._reserve.release() else 0
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

    def _recreate_if_removed(self) -> None:
        """If the spool file was removed (its directory deleted, say), SQLite goes on in the removed file, which a
        restart would never find: write what it holds to a new file at the same path and go on there."""
        try:
            os.stat(self.path)
            return
        except FileNotFoundError:
            pass
        except OSError:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db.execute("VACUUM INTO ?", (str(self.path),))  # records, counters, ids: a complete copy
            db = connect(self.path, self._config)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                self.path.unlink()  # no half copy for the next start to find
            if not self._recreate_failing:
                self._recreate_failing = True
                log.error(
                    "spool %s: the file was removed while the agent runs and cannot be made again (%s); messages stay "
                    "in the removed file until the agent stops; make %s writable again",
                    self.path,
                    exc,
                    self.path.parent,
                )
            return
        self._sync.close()
        self._db.close()
        self._db = db
        self._sync = WalSyncer(self.path)
        self._recreate_failing = False
        self._reserve.ensure()
        if self._lock is not None:
            self._lock = self._lock.renewed()
        log.warning(
            "spool %s: the file was removed while the agent runs; wrote the %d messages it held to a new file there",
            self.path,
            sum(self._depth.values()),
        )

    # -- housekeeping -----------------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        if self._last_expire is None or abs(self._clock() - self._last_expire) >= _EXPIRE_EVERY_S:
            self.expire()
            if self._disk is not None:
                self._probe_disk(self._disk)
            now = self._clock()
            if abs(now - self._last_look) >= _PROBE_S:
                self._last_look = now
                self._recreate_if_removed()
        if (
            self._config.fsync == "interval"
            and (time.monotonic() - self._sync.last) * 1000.0 >= self._config.fsync_interval_ms
        ):
            self._sync.soon()

    def _fsync_text(self) -> str:
        if self._config.fsync == "always":
            return "always (fsync per append)"
        return f"interval ({self._config.fsync_interval_ms:g} ms; WAL, synchronous=NORMAL)"
