"""The records table of the SQLite spool and the in-memory totals that mirror it: write transactions, room-making
by the declared drop order, deletion, persisted counters. ``SqliteSpool`` builds the Spool protocol, the disk-full
episodes and housekeeping on top of this base; both change the same connection and totals in the same
transactions, so they share one object.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError
from agent.spool.base import DROP_ORDER, KINDS
from agent.spool.episodes import Gone
from agent.spool.storage import is_storage_fault
from agent.spool.walsync import WalSyncer


class Txn:
    """What a transaction body tells its commit: whether it changed anything, and the counter increments to
    apply in memory once committed (never before: a rolled-back transaction leaves the totals as they were)."""

    __slots__ = ("changed", "counters")

    def __init__(self) -> None:
        self.changed = True
        self.counters: dict[str, int] = {}


class StorageFault(Exception):
    """The filesystem refused a write transaction. Internal: handled inside SqliteSpool, never raised out of it."""

    def __init__(self, what: str, exc: sqlite3.Error) -> None:
        super().__init__(f"{what}: {exc}")
        self.reason = str(exc)


class RecordStore:
    """The records table, its transactions and its totals. Not used alone: ``SqliteSpool`` is the spool."""

    def __init__(self, path: Path, db: sqlite3.Connection, config: SpoolConfig, clock: Callable[[], float]) -> None:
        self.path = path
        self._db = db
        self._config = config
        self._clock = clock
        self._sync = WalSyncer(path)
        self._bytes = 0
        self._depth: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._last_id = 0
        self._counters: dict[str, int] = {}
        self._unsaved: dict[str, int] = {}  # counter increments the disk refused to store; saved with a later write
        self._replaced = ""

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Txn]:
        """One write transaction: committed (then the WAL is marked for the next fsync and the counters updated in
        memory) or rolled back. A refusal by the filesystem becomes StorageFault, other SQLite errors SpoolError."""
        txn = Txn()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield txn
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # after SQLITE_FULL or an I/O error SQLite may have rolled back itself
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if is_storage_fault(exc):
                raise StorageFault(what, exc) from exc
            raise SpoolError(f"spool {self.path}: {what} failed: {exc}") from exc
        self._sync.dirty = self._sync.dirty or txn.changed
        for name, n in txn.counters.items():
            self._counters[name] = self._counters.get(name, 0) + n

    def _load(self) -> None:
        """Build the in-memory totals from the database (at open)."""
        self._bytes = 0
        self._depth = dict.fromkeys(KINDS, 0)
        for kind, count, size in self._db.execute("SELECT kind, count(*), sum(size) FROM records GROUP BY kind"):
            self._depth[kind] = count
            self._bytes += size or 0
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='records'").fetchone()
        self._last_id = row[0] if row else 0
        self._counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        row = self._db.execute("SELECT value FROM meta WHERE key='replaced'").fetchone()
        self._replaced = row[0] if row else ""

    def _appended(self, rid: int, kind: str, size: int) -> None:
        self._last_id = rid
        self._bytes += size
        self._depth[kind] += 1

    def _insert(self, topic: str, payload: bytes, kind: str, seq: int | None, ts: float, size: int) -> int:
        """Inside a transaction: one row; returns its id."""
        cur = self._db.execute(
            "INSERT INTO records (kind, topic, payload, seq, ts, size) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, topic, payload, seq, ts, size),
        )
        rid = cur.lastrowid
        assert rid is not None
        return rid

    def _make_room(self, size: int, limit: int, freed: int = 0) -> Gone:
        """Inside a transaction: delete the oldest records per DROP_ORDER until ``size`` more bytes fit under
        ``limit`` (``freed`` bytes are already deleted in this transaction)."""
        excess = self._bytes - freed + size - limit
        victims: Gone = []
        if excess <= 0:
            return victims
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

    def _delete(self, ids: list[int]) -> Gone:
        """Inside a transaction: delete these ids; returns (id, kind, size) of the ones that existed."""
        gone: Gone = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            gone += self._db.execute(f"DELETE FROM records WHERE id IN ({marks}) RETURNING id, kind, size", chunk)
        return gone

    def _bump_counters(self, txn: Txn, gone: Gone, why: str) -> None:
        per_name: dict[str, int] = {}
        for _, kind, _ in gone:
            name = f"dropped_{why}_{kind}"
            per_name[name] = per_name.get(name, 0) + 1
        self._add_counters(txn, per_name)

    def _add_counters(self, txn: Txn, per_name: dict[str, int]) -> None:
        for name, n in per_name.items():
            self._db.execute(
                "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )
            txn.counters[name] = txn.counters.get(name, 0) + n

    def _counters_now(self) -> dict[str, int]:
        if not self._unsaved:
            return self._counters
        return {k: self._counters.get(k, 0) + self._unsaved.get(k, 0) for k in self._counters.keys() | self._unsaved}

    def _forget(self, gone: Gone) -> None:
        for _, kind, size in gone:
            self._bytes -= size
            self._depth[kind] -= 1
