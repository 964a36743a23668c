"""The Spool protocol: a durable FIFO of ready-to-publish MQTT messages.

Lifecycle: ``open`` (recovers whatever a crash left), any number of ``append`` / ``read`` / ``ack``, ``close``.
Concurrency: one event-loop thread; calls are synchronous and short (one SQLite transaction each), never awaited.

Contract:
- ``append`` stores topic and payload bytes as given and returns the record id; ids grow strictly, so reading by
  id is reading oldest first. A record is readable as soon as ``append`` returned.
- ``append_many`` is the group commit: the messages of one window (``spool.group_commit_ms``) in one transaction.
- ``ack`` deletes records (after their PUBACK), written with the next transaction or at the latest by ``flush``
  (once a second). Acking an id that is gone (dropped, already acked) is a no-op.
- The store is bounded by bytes and by age. When an append does not fit, the oldest ``status`` records go first,
  then the oldest ``samples``, then the oldest ``kpi``; every drop is counted (persisted with the deletion, in
  the same transaction) and each episode is logged once.
- A filesystem that refuses writes (full, read-only, failing) is not an error: the same order makes room within
  the space the spool holds; a message that cannot be stored at all is counted and ``append`` returns None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Kind = Literal["samples", "kpi", "status"]
KINDS: tuple[Kind, ...] = ("samples", "kpi", "status")
DROP_ORDER: tuple[Kind, ...] = ("status", "samples", "kpi")  # first dropped first
RECORD_OVERHEAD_BYTES = 64  # accounted per record on top of topic and payload (row, index entries)


NewRecord = tuple[str, bytes, Kind, "int | None", "float | None"]  # topic, payload, kind, seq, ts (None: now)


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    id: int
    topic: str
    payload: bytes
    kind: Kind
    seq: int | None
    ts: float  # the message's time (UNIX s); age and expiry count from it


@dataclass(frozen=True, slots=True)
class SpoolStats:
    path: str
    depth: int
    bytes: int
    max_bytes: int
    oldest_ts: float | None
    oldest_age_s: float | None
    depth_by_kind: dict[str, int] = field(default_factory=dict)
    dropped_full: dict[str, int] = field(default_factory=dict)  # per kind, dropped because the spool was full
    dropped_expired: dict[str, int] = field(default_factory=dict)  # per kind, dropped because older than max_age
    dropped_unwritable: dict[str, int] = field(default_factory=dict)  # per kind, never stored: the disk refused
    set_aside: dict[str, int] = field(default_factory=dict)  # per kind, the broker cannot take them (too big)
    fsync: str = ""
    disk_fault: str = ""  # while the filesystem refuses the spool's writes: why (else "")
    fsync_failures: int = 0  # failed fsyncs of the WAL since start
    corrupt_replaced: int = 0  # 1 when this spool replaced a corrupt one at start (kept as ``replaced_file``)
    replaced_file: str = ""

    @property
    def dropped_total(self) -> int:
        return (
            sum(self.dropped_full.values()) + sum(self.dropped_expired.values()) + sum(self.dropped_unwritable.values())
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "depth": self.depth,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "oldest_ts": self.oldest_ts,
            "oldest_age_s": self.oldest_age_s,
            "depth_by_kind": dict(self.depth_by_kind),
            "dropped_full": dict(self.dropped_full),
            "dropped_expired": dict(self.dropped_expired),
            "dropped_unwritable": dict(self.dropped_unwritable),
            "set_aside": dict(self.set_aside),
            "dropped_total": self.dropped_total,
            "fsync": self.fsync,
            "disk_fault": self.disk_fault,
            "fsync_failures": self.fsync_failures,
            "corrupt_replaced": self.corrupt_replaced,
            "replaced_file": self.replaced_file,
        }


class Spool(Protocol):
    def append(
        self, topic: str, payload: bytes, kind: Kind, seq: int | None = None, ts: float | None = None
    ) -> int | None:
        """Store one message durably (per the fsync policy) and return its id; None when the filesystem refused
        to store it (counted in ``dropped_unwritable``)."""
        ...

    def append_many(self, items: Sequence[NewRecord]) -> list[int | None]:
        """Group commit: store these messages, in order, in one transaction; their ids as ``append`` gives them."""
        ...

    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> list[SpooledRecord]:
        """Up to ``limit`` records with ``after_id < id <= upto_id``, oldest first."""
        ...

    def last_id(self) -> int:
        """The id of the newest record ever appended (0 if none); survives restarts."""
        ...

    def ack(self, ids: Iterable[int]) -> None:
        """Delete these records: the broker has acknowledged them. The deletion may be written with the next
        transaction (batched); ``read`` never returns an acked record."""
        ...

    def set_aside(self, record_id: int, reason: str) -> None:
        """Take a record the broker cannot accept out of the queue (kept apart for inspection, counted)."""
        ...

    def flush(self) -> None:
        """A durability point: write the queued acks and fsync what was committed since the last one (no fsync
        under ``fsync: always``)."""
        ...

    def stats(self) -> SpoolStats: ...

    def close(self) -> None: ...
