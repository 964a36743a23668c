"""SqliteSpool: the Spool protocol on one SQLite database in WAL mode.

Durability (see ``agent.config.spool`` for the two fsync policies): each append, ack and drop is one
transaction, so after kill -9 the spool holds exactly what was appended and not acked, with the drop counters
that match. ``synchronous=NORMAL`` in WAL mode cannot corrupt the database on a power cut; it can only roll back
the last commits that were not fsynced yet, which the ``interval`` policy bounds.

The ``interval`` policy's fsync of the WAL runs on a helper thread (one at a time): fsync can take milliseconds
to tens of milliseconds on a gateway's flash or a VM disk, and on the event loop it would delay every poll and
publish behind it. SQLite itself is only ever used from the owner's thread. ``close()`` waits for an fsync in
flight and fsyncs once more, synchronously.

Bytes are accounted as ``len(topic) + len(payload) + RECORD_OVERHEAD_BYTES`` per record; SQLite reuses freed
pages, so the file stays near the high-water mark of that figure (plus the WAL, capped by ``journal_size_limit``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError
from agent.spool.base import DROP_ORDER, KINDS, RECORD_OVERHEAD_BYTES, Kind, SpooledRecord, SpoolStats

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_EXPIRE_EVERY_S = 1.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    seq INTEGER,
    ts REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, id);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class _Txn:
    """What a transaction body tells its commit: whether it changed anything."""

    __slots__ = ("changed",)

    def __init__(self) -> None:
        self.changed = True


class SqliteSpool:
    """The durable spool. Create with :meth:`open`; one instance per file, used from one thread."""

    def __init__(self, path: Path, db: sqlite3.Connection, config: SpoolConfig, clock: Callable[[], float]) -> None:
        self.path = path
        self._db = db
        self._config = config
        self._clock = clock
        self._wal_fd: int | None = None
        self._syncer: ThreadPoolExecutor | None = None  # runs the interval policy's WAL fsync off the caller's thread
        self._sync_in_flight: Future[None] | None = None
        self._dirty = False  # commits since the last fsync of the WAL
        self._last_sync = time.monotonic()
        self._last_expire: float | None = None  # injected-clock time of the last expiry pass
        self._full_episode: dict[str, int] | None = None
        self._expire_episode: dict[str, int] | None = None
        self._bytes = 0
        self._depth: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._last_id = 0
        self._counters: dict[str, int] = {}
        self._load()

    @classmethod
    def open(cls, path: str | Path, config: SpoolConfig, clock: Callable[[], float] = time.time) -> SqliteSpool:
        """Open or create the spool file and recover it. Raises SpoolError naming the file."""
        path = Path(path)
        try:
            created = not path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL").fetchone()
            db.execute(f"PRAGMA synchronous={'FULL' if config.fsync == 'always' else 'NORMAL'}")
            db.execute("PRAGMA journal_size_limit=67108864")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise SpoolError(f"spool {path}: schema version {row[0]} is not {SCHEMA_VERSION}")
            if created:
                _fsync_dir(path.parent)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {path}: cannot open: {exc}") from exc
        except OSError as exc:
            raise SpoolError(f"spool {path}: cannot open: {exc.strerror}") from exc
        return cls(path, db, config, clock)

    # -- Spool protocol ---------------------------------------------------------------------------------------

    def append(self, topic: str, payload: bytes, kind: Kind, seq: int | None = None, ts: float | None = None) -> int:
        if kind not in KINDS:
            raise ValueError(f"spool: unknown kind {kind!r}")
        size = len(topic.encode()) + len(payload) + RECORD_OVERHEAD_BYTES
        ts = self._clock() if ts is None else ts
        with self._transaction("append"):
            dropped = self._make_room(size)
            cur = self._db.execute(
                "INSERT INTO records (kind, topic, payload, seq, ts, size) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, topic, payload, seq, ts, size),
            )
            self._bump_counters(dropped, "full")
        rid = cur.lastrowid
        assert rid is not None
        self._last_id = rid
        self._bytes += size
        self._depth[kind] += 1
        self._note_full_episode(dropped)
        self._housekeeping()
        return rid

    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> list[SpooledRecord]:
        self._housekeeping()
        upto = self._last_id if upto_id is None else upto_id
        try:
            rows = self._db.execute(
                "SELECT id, topic, payload, kind, seq, ts FROM records WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after_id, upto, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: read failed: {exc}") from exc
        return [SpooledRecord(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def last_id(self) -> int:
        return self._last_id

    def ack(self, ids: Iterable[int]) -> None:
        id_list = list(ids)
        if not id_list:
            return
        with self._transaction("ack"):
            gone = self._delete(id_list)
        self._forget(gone)
        self._housekeeping()

    def stats(self) -> SpoolStats:
        row = self._db.execute("SELECT min(ts) FROM records").fetchone()
        oldest = row[0] if row else None
        return SpoolStats(
            path=str(self.path),
            depth=sum(self._depth.values()),
            bytes=self._bytes,
            max_bytes=self._config.max_bytes,
            oldest_ts=oldest,
            oldest_age_s=None if oldest is None else max(0.0, self._clock() - oldest),
            depth_by_kind=dict(self._depth),
            dropped_full={k: self._counters.get(f"dropped_full_{k}", 0) for k in KINDS},
            dropped_expired={k: self._counters.get(f"dropped_expired_{k}", 0) for k in KINDS},
            fsync=self._fsync_text(),
        )

    def flush(self) -> None:
        """Start an fsync of the WAL if anything was committed since the last one (on the helper thread; a failed
        fsync raises SpoolError at the next call). The publisher calls it once a second, which bounds the
        power-cut window when appends stop."""
        self._sync_wal_soon()

    def expire(self) -> int:
        """Drop records older than ``max_age_s`` now; returns how many. Spool calls run it once per clock second."""
        now = self._clock()
        self._last_expire = now
        cutoff = now - self._config.max_age_s
        with self._transaction("expiry") as txn:
            rows = self._db.execute("SELECT id, kind, size FROM records WHERE ts < ?", (cutoff,)).fetchall()
            gone = self._delete([r[0] for r in rows])
            self._bump_counters(gone, "expired")
            txn.changed = bool(gone)  # an idle spool's expiry pass must not cause an fsync every second
        self._forget(gone)
        self._note_expire_episode(gone)
        return len(gone)

    def close(self) -> None:
        try:
            self._wait_sync()
            self._sync_wal()
        finally:
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)
                self._syncer = None
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
            self._db.close()

    # -- internals --------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[_Txn]:
        """One write transaction: committed (and, if it changed anything, the WAL marked for the next fsync) or
        rolled back with the in-memory totals rebuilt from the database; SQLite errors become SpoolError."""
        txn = _Txn()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield txn
                self._db.execute("COMMIT")
                self._dirty = self._dirty or txn.changed
            except BaseException:
                self._db.execute("ROLLBACK")
                self._load()
                raise
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: {what} failed: {exc}") from exc

    def _load(self) -> None:
        """Rebuild the in-memory totals from the database (at open, and after a failed transaction)."""
        self._bytes = 0
        self._depth = dict.fromkeys(KINDS, 0)
        for kind, count, size in self._db.execute("SELECT kind, count(*), sum(size) FROM records GROUP BY kind"):
            self._depth[kind] = count
            self._bytes += size or 0
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='records'").fetchone()
        self._last_id = row[0] if row else 0
        self._counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def _make_room(self, size: int) -> list[tuple[int, str, int]]:
        """Inside a transaction: delete the oldest records per DROP_ORDER until ``size`` more bytes fit."""
        excess = self._bytes + size - self._config.max_bytes
        victims: list[tuple[int, str, int]] = []
        if excess <= 0:
            return victims
        if size > self._config.max_bytes:
            raise SpoolError(f"spool {self.path}: a {size} B message is larger than max_bytes")
        for kind in DROP_ORDER:
            while excess > 0:
                last = victims[-1][0] if victims and victims[-1][1] == kind else 0
                rows = self._db.execute(
                    "SELECT id, kind, size FROM records WHERE kind = ? AND id > ? ORDER BY id LIMIT 512",
                    (kind, last),
                ).fetchall()
                if not rows:
                    break
                for r in rows:
                    victims.append((r[0], r[1], r[2]))
                    excess -= r[2]
                    if excess <= 0:
                        break
            if excess <= 0:
                break
        self._delete([v[0] for v in victims])
        return victims

    def _delete(self, ids: list[int]) -> list[tuple[int, str, int]]:
        """Inside a transaction: delete these ids; returns (id, kind, size) of the ones that existed."""
        gone: list[tuple[int, str, int]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone += self._db.execute(f"DELETE FROM records WHERE id IN ({marks}) RETURNING id, kind, size", chunk)
        return gone

    def _bump_counters(self, gone: list[tuple[int, str, int]], why: str) -> None:
        per_kind: dict[str, int] = {}
        for _, kind, _ in gone:
            per_kind[kind] = per_kind.get(kind, 0) + 1
        for kind, n in per_kind.items():
            name = f"dropped_{why}_{kind}"
            self._db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )
            self._counters[name] = self._counters.get(name, 0) + n

    def _forget(self, gone: list[tuple[int, str, int]]) -> None:
        for _, kind, size in gone:
            self._bytes -= size
            self._depth[kind] -= 1

    def _note_full_episode(self, dropped: list[tuple[int, str, int]]) -> None:
        self._forget(dropped)
        if dropped:
            if self._full_episode is None:
                self._full_episode = {}
                log.warning(
                    "spool %s: full at %d bytes; dropping the oldest status, then samples, then KPI messages",
                    self.path,
                    self._config.max_bytes,
                )
            for _, kind, _ in dropped:
                self._full_episode[kind] = self._full_episode.get(kind, 0) + 1
        elif self._full_episode is not None and self._bytes <= 0.9 * self._config.max_bytes:
            log.warning("spool %s: no longer full; dropped %s in this episode", self.path, _counts(self._full_episode))
            self._full_episode = None

    def _note_expire_episode(self, gone: list[tuple[int, str, int]]) -> None:
        if gone:
            if self._expire_episode is None:
                self._expire_episode = {}
                log.warning("spool %s: dropping messages older than %g s", self.path, self._config.max_age_s)
            for _, kind, _ in gone:
                self._expire_episode[kind] = self._expire_episode.get(kind, 0) + 1
        elif self._expire_episode is not None:
            log.warning("spool %s: expiry stopped; dropped %s as too old", self.path, _counts(self._expire_episode))
            self._expire_episode = None

    def _housekeeping(self) -> None:
        if self._last_expire is None or abs(self._clock() - self._last_expire) >= _EXPIRE_EVERY_S:
            self.expire()
        now = time.monotonic()
        if self._config.fsync == "interval" and (now - self._last_sync) * 1000.0 >= self._config.fsync_interval_ms:
            self._sync_wal_soon()

    def _wal(self) -> int | None:
        """The WAL's file descriptor, opened once (None before anything was written)."""
        if self._wal_fd is None:
            try:
                self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return None
            _fsync_dir(self.path.parent)  # the WAL's directory entry must survive a power cut too
        return self._wal_fd

    def _sync_wal_soon(self) -> None:
        """Hand an fsync of the WAL to the helper thread, unless one is still running (it will cover this one's
        commits only if they came before it started, so ``_dirty`` stays set for the next round)."""
        self._check_sync()
        if self._sync_in_flight is not None or self._config.fsync == "always" or not self._dirty:
            return
        self._last_sync = time.monotonic()
        fd = self._wal()
        if fd is None:
            return
        self._dirty = False
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-fsync")
        self._sync_in_flight = self._syncer.submit(os.fsync, fd)

    def _check_sync(self) -> None:
        future = self._sync_in_flight
        if future is None or not future.done():
            return
        self._sync_in_flight = None
        exc = future.exception()
        if isinstance(exc, OSError):
            raise SpoolError(f"spool {self.path}: fsync of the WAL failed: {exc.strerror}") from exc

    def _wait_sync(self) -> None:
        if self._sync_in_flight is not None:
            self._sync_in_flight.exception()  # wait
            self._check_sync()

    def _sync_wal(self) -> None:
        """Fsync the WAL now, on this thread (at close)."""
        self._last_sync = time.monotonic()
        if self._config.fsync == "always" or not self._dirty:
            return  # every commit was already fsynced, or nothing changed
        fd = self._wal()
        if fd is None:
            return
        self._dirty = False
        try:
            os.fsync(fd)
        except OSError as exc:
            raise SpoolError(f"spool {self.path}: fsync of the WAL failed: {exc.strerror}") from exc

    def _fsync_text(self) -> str:
        if self._config.fsync == "always":
            return "always (fsync per append)"
        return f"interval ({self._config.fsync_interval_ms:g} ms; WAL, synchronous=NORMAL)"


def _counts(per_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(per_kind.items()))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
