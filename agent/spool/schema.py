"""The spool's file: its schema and pragmas, and what an open that failed means for an operator."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.config.spool import SpoolConfig
from agent.errors import SpoolError, StateDirError
from agent.spool.storage import is_corrupt, is_storage_fault
from agent.spool.walsync import fsync_dir

SCHEMA_VERSION = 1
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
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    seq INTEGER,
    ts REAL NOT NULL,
    size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""


def connect(path: Path, config: SpoolConfig) -> sqlite3.Connection:
    """Open or create the database in WAL mode with the schema. Raises sqlite3.Error or OSError as they come (the
    caller decides whether a corrupt file is moved aside), StateDirError for a spool of another schema version."""
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        db.execute("PRAGMA journal_mode=WAL").fetchone()
        db.execute(f"PRAGMA synchronous={'FULL' if config.fsync == 'always' else 'NORMAL'}")
        db.execute("PRAGMA journal_size_limit=67108864")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise StateDirError(
                f"spool {path}: schema version {row[0]} is not {SCHEMA_VERSION} (written by another version of "
                "the agent); run that version to drain it, or move the file aside"
            )
        if created:
            fsync_dir(path.parent)
    except BaseException:
        db.close()
        raise
    return db


def open_error(path: Path, exc: sqlite3.Error) -> SpoolError:
    """The one line an operator reads when the spool cannot be opened, with what to do."""
    if is_corrupt(exc):
        return SpoolError(f"spool {path}: cannot open: not a sound SQLite spool ({exc}); move it aside or delete it")
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return StateDirError(
            f"spool {path}: cannot open for writing ({exc}); make {path.parent} and the spool files in it writable "
            "for the agent's user"
        )
    if is_storage_fault(exc):
        return SpoolError(f"spool {path}: cannot open: {exc}; free space on the filesystem of {path.parent}")
    return SpoolError(f"spool {path}: cannot open: {exc}")
