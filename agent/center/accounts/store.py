"""``accounts.sqlite``: the account, entries, closed periods, restatements and the upload outbox, in one file.

SQLite in WAL mode with ``synchronous=FULL``: a committed transaction survives a crash or power loss, a crash inside
one leaves nothing of it. Every change that belongs together (an import of entries, a restatement and its new
revision, a record and its deliveries) is one transaction. The schema carries its version in ``meta``; a newer file
than this code knows is refused, an older one is migrated step by step (version 1 is the first).

Tables:
    quarter        per unit and series (a meter id, or ``output:<product>``) and 15-minute start: the metered
                   quantity, the covered fraction and the cause of what is missing
    entries        manual entries (deliveries, stock counts, laboratory LHV, output, invoices), with their source line
    closed         a closed day or month: its figures and the coefficients they were computed with, per revision;
                   revision 0 is the closing, each restatement adds one (who, when, why)
    restatements   what a restatement changed: field, previous value, new value, who, when, why
    outbox         every upload record ever produced (ID = unit/kind/period/rN), its JSON body
    deliveries     per record and receiver: pending, acked or refused, attempts, the receiver's last answer
    receivers      per receiver: failures in a row and when the next attempt is due (backoff)
    progress       per unit and kind: the end of the last period produced
    meter_register meters entered or changed by command/CSV (GB 17167: class, calibration due, what it measures)
    meter_changes  every register change: previous and new entry, who, when, the file line or command
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA_VERSION = 2  # 2: meter_register, meter_changes (added as new tables to a version-1 file)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarter (
    unit TEXT NOT NULL, series TEXT NOT NULL, start_ts REAL NOT NULL,
    quantity REAL NOT NULL, coverage REAL NOT NULL, cause TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (unit, series, start_ts));
-- a period's quarters of every series (figures, gaps): without it each period read scans the unit's whole history
CREATE INDEX IF NOT EXISTS quarter_time ON quarter (unit, start_ts);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY, unit TEXT NOT NULL, kind TEXT NOT NULL, day TEXT NOT NULL,
    carrier TEXT NOT NULL DEFAULT '', product TEXT NOT NULL DEFAULT '', quantity REAL NOT NULL,
    qty_unit TEXT NOT NULL, amount_cny REAL, who TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL, entered_at REAL NOT NULL,
    UNIQUE (unit, kind, day, carrier, product));
CREATE TABLE IF NOT EXISTS closed (
    unit TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL,
    figures TEXT NOT NULL, coefficients TEXT NOT NULL, at REAL NOT NULL,
    who TEXT NOT NULL DEFAULT '', why TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (unit, kind, period, revision));
CREATE TABLE IF NOT EXISTS restatements (
    id INTEGER PRIMARY KEY, unit TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL,
    carrier TEXT NOT NULL, field TEXT NOT NULL, old REAL, new REAL NOT NULL,
    who TEXT NOT NULL, at REAL NOT NULL, why TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    record_id TEXT PRIMARY KEY, unit TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
    revision INTEGER NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    record_id TEXT NOT NULL REFERENCES outbox(record_id), receiver TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_attempt REAL, acked_at REAL, answer TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (record_id, receiver));
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (receiver, state);
CREATE TABLE IF NOT EXISTS receivers (
    unit TEXT NOT NULL, receiver TEXT NOT NULL, failures INTEGER NOT NULL, next_attempt REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (unit, receiver));
CREATE TABLE IF NOT EXISTS progress (unit TEXT NOT NULL, kind TEXT NOT NULL, until_ts REAL NOT NULL,
    PRIMARY KEY (unit, kind));
CREATE TABLE IF NOT EXISTS meter_register (
    unit TEXT NOT NULL, id TEXT NOT NULL, carrier TEXT NOT NULL, flow TEXT NOT NULL, accuracy_class TEXT NOT NULL,
    calibration_due TEXT NOT NULL, measures TEXT NOT NULL, who TEXT NOT NULL, note TEXT NOT NULL, source TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (unit, id));
CREATE TABLE IF NOT EXISTS meter_changes (
    seq INTEGER PRIMARY KEY, unit TEXT NOT NULL, id TEXT NOT NULL, previous TEXT, new TEXT NOT NULL,
    who TEXT NOT NULL, note TEXT NOT NULL, source TEXT NOT NULL, at REAL NOT NULL);
"""


class StoreError(Exception):
    """The accounts database cannot be used (a newer schema, a damaged file)."""


class Store:
    """One connection; use from one thread at a time (the centre runs accounts work in one worker thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or int(row[0]) < SCHEMA_VERSION:  # the new tables were created above
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {row[0]} is newer than this energy-center ({SCHEMA_VERSION}); "
                    "upgrade energy-center or restore a matching backup"
                )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (nothing of a failed change stays)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def open_store(state_dir: str | Path) -> Store:
    return Store(Path(state_dir) / "accounts.sqlite")
