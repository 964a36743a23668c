"""SqliteSpool: the Spool protocol on one SQLite database in WAL mode.

Durability (see ``agent.config.spool`` for the two fsync policies): the appends of one group commit window
(``group_commit_ms``) are one transaction (``append_many``, the group commit), acks are written with the next
transaction (at the latest by the once-a-second ``flush``), and every drop is counted in the transaction that makes it; after kill -9 the spool holds
what was appended and not yet written as acked (those few are published again, with the same seq). ``synchronous=NORMAL`` in WAL mode cannot corrupt the database on a power cut; it can only roll back
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

On a nearly full filesystem the database may grow only into space that leaves the WAL room to be checkpointed
(``records.RecordStore._cap_growth``), so a small partition never reaches a state where no write is possible.
Messages the broker cannot take are moved to the ``set_aside`` table (``set_aside``).

The records table, its transactions and in-memory totals are the base class ``records.RecordStore``, the
disk-full paths ``fulldisk.FullDiskStore``; the file,
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
from agent.spool.episodes import BoundEpisodes
from agent.spool.fulldisk import FullDiskStore
from agent.spool.lock import StateDirLock
from agent.spool.records import WAL_HEADROOM_BYTES, StorageFault
from agent.spool.schema import connect, open_error
from agent.spool.storage import Reserve, free_bytes, is_corrupt, move_aside, refused
from agent.spool.walsync import WalSyncer

log = logging.getLogger(__name__)

_EXPIRE_EVERY_S = 1.0
_PROBE_S = 5.0
_ACK_BATCH = 4096
SET_ASIDE_KEEP = 100  # messages set aside that stay in the spool file for inspection  # queued acks written at once without waiting for the next transaction  # while keeping to its space, how often the spool looks whether the filesystem has room again


class SqliteSpool(FullDiskStore):
    """The durable spool. Create with :meth:`open`; one instance per file, used from one thread."""

    def __init__(
        self,
        path: Path,
        db: sqlite3.Connection,
        config: SpoolConfig,
        clock: Callable[[], float],
        reserve: Reserve | None = None,
    ) -> None:
        super().__init__(path, db, config, clock, reserve or Reserve(path.with_name(f"{path.name}.reserve"), 0))
        self._lock: StateDirLock | None = None
        self._last_expire: float | None = None  # injected-clock time of the last expiry pass
        self._bounds = BoundEpisodes(path, config.max_bytes, config.max_age_s)
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

    def set_aside(self, record_id: int, reason: str) -> None:
        """Move a record the broker cannot take out of the queue into the ``set_aside`` table (the newest
        ``SET_ASIDE_KEEP`` are kept there for inspection), counted as ``set_aside_<kind>``; never published again."""
        try:
            with self._transaction("set aside") as txn:
                self._db.execute(
                    "INSERT OR REPLACE INTO set_aside SELECT id, kind, topic, payload, seq, ts, size, ?, ? "
                    "FROM records WHERE id = ?",
                    (reason, self._clock(), record_id),
                )
                self._db.execute(
                    "DELETE FROM set_aside WHERE id NOT IN (SELECT id FROM set_aside ORDER BY id DESC LIMIT ?)",
                    (SET_ASIDE_KEEP,),
                )
                gone = self._delete([record_id])
                self._bump_counters(txn, gone, "set_aside")
        except StorageFault as fault:
            self._disk_refused(fault)
            self.ack([record_id])  # not kept, but never offered again
            return
        self._forget(gone)

    def _commit_acks(self) -> None:
        if self._closed or (not self._unacked and not self._unsaved):
            return  # closed: a late ack stays unwritten (the record is sent again after the restart, same seq)
        try:
            with self._transaction("ack") as txn:
                gone = self._save_pending(txn)
        except StorageFault as fault:
            self._disk_refused(fault)  # the records stay until a write succeeds; a restart would resend them
            return
        self._pending_saved(gone)
        self._housekeeping()

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
            set_aside={k: counters.get(f"dropped_set_aside_{k}", 0) for k in KINDS},
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
                    self._pending_saved(self._save_pending(txn))
            self._sync.close()
        finally:
            self._closed = True
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
            # a reserve (held, or given back in this episode) is the WAL's room: no more headroom needed then
            wal_room = self._reserve.size >= WAL_HEADROOM_BYTES and (
                self._reserve_released or self._reserve.path.exists()
            )
            self._cap_growth(free_bytes(self.path.parent), 0 if wal_room else WAL_HEADROOM_BYTES)
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
