"""What to publish next: the in-flight window, the live and backlog cursors, the replay rate. No I/O of its own:
it reads the spool and calls ``publish`` (which hands a record to paho and returns its message id, or None when
the record can never be published); the sink reports PUBACKs with :meth:`Forwarder.acked`.

Records in the spool when a session comes up are the *backlog* (ids up to ``backlog_end``); later ones are
*live*. ``live_first`` sends live records first and fills the rest of the window with backlog at no more than
``replay_rate_msgs_s``; ``backlog_first`` keeps strict spool order until the backlog is drained. Cursors only move
forward. A record handed to paho stays in ``pending`` until its PUBACK: paho resends it itself after a reconnect,
so the backlog cursor skips it rather than publishing it twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class OutgoingRecord(Protocol):
    """One spooled message, as the sink reads it."""

    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...


class SpoolReader(Protocol):
    """What the sink needs from the spool (``agent.spool.SqliteSpool`` provides it)."""

    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> Sequence[OutgoingRecord]: ...
    def last_id(self) -> int: ...
    def ack(self, ids: Iterable[int]) -> None: ...
    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """A record the caller has just appended to the spool, offered for publishing without reading it back."""

    id: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Acked:
    record_id: int
    topic: str
    latency_s: float


class Forwarder:
    def __init__(
        self,
        spool: SpoolReader,
        publish: Callable[[OutgoingRecord], int | None],
        *,
        max_inflight: int,
        replay_rate_msgs_s: float,
        backlog_first: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spool = spool
        self._now = monotonic
        self._publish = publish
        self._configured_inflight = self._max_inflight = max_inflight
        self._rate = replay_rate_msgs_s
        self._backlog_first = backlog_first
        self._window: dict[int, tuple[int, float, str]] = {}  # paho mid -> (record id, sent at, topic)
        self._pending: set[int] = set()  # record ids handed to paho, not yet acknowledged
        self._to_ack: list[int] = []
        self._live_cursor = self._backlog_end = spool.last_id()
        self._backlog_cursor = 0
        self._tokens = 0.0
        self._tokens_at = 0.0
        self.latencies: deque[float] = deque(maxlen=2048)
        self.published = 0

    @property
    def inflight(self) -> int:
        return len(self._window)

    @property
    def replaying(self) -> bool:
        return self._backlog_cursor < self._backlog_end

    def wants_more(self) -> bool:
        """Whether records wait that only :meth:`forward` sends (backlog, or live ones not taken by ``offer``)."""
        return self.replaying or self._spool.last_id() > self._live_cursor

    def session_up(self, receive_maximum: int | None = None) -> None:
        """A session started: everything appended while down is backlog now. An MQTT 5 broker's Receive Maximum
        (from its CONNACK) caps the window, since paho does not enforce it."""
        self._max_inflight = min(self._configured_inflight, receive_maximum or self._configured_inflight)
        self._backlog_end = self._live_cursor = max(self._live_cursor, self._spool.last_id())

    def forward(self) -> int:
        """Publish as many records as the window and the replay rate allow; returns how many."""
        room = self._max_inflight - len(self._window)
        if room <= 0:
            return 0
        if self._backlog_first and self.replaying:
            return self._send_backlog(room)
        sent = self._send_live(room)
        if self.replaying and sent < room:
            sent += self._send_backlog(room - sent)
        return sent

    def offer(self, record: LiveRecord) -> bool:
        """Publish a just-appended record at once when it is the next live one and the window has room; False
        leaves it to :meth:`forward`, which reads it from the spool. Order and the window are kept either way;
        this only saves the read-back and the wait for the forwarding task (latency under a burst of polls)."""
        if record.id != self._live_cursor + 1 or len(self._window) >= self._max_inflight:
            return False
        if self._backlog_first and self.replaying:
            return False
        self._live_cursor = record.id
        self._hand_over(record)
        return True

    def acked(self, mid: int) -> Acked | None:
        """The broker acknowledged message ``mid``; the record is deleted at the next :meth:`flush_acks`."""
        entry = self._window.pop(mid, None)
        if entry is None:
            return None  # not ours (a status message)
        rid, sent, topic = entry
        self._pending.discard(rid)
        self._to_ack.append(rid)
        latency = self._now() - sent
        self.latencies.append(latency)
        return Acked(rid, topic, latency)

    def drop(self, record_id: int) -> None:
        """Delete a record that can never be published (with the next acks)."""
        self._to_ack.append(record_id)

    def flush_acks(self) -> None:
        if self._to_ack:
            ids, self._to_ack = self._to_ack, []
            self._spool.ack(ids)

    def drained(self) -> bool:
        self.flush_acks()
        return not self._window and not self._spool.read(0, 1)

    def idle_wait(self, tick_s: float) -> float:
        """How long to sleep when nothing could be sent: until a replay token is due, else a tick."""
        if self.replaying and len(self._window) < self._max_inflight:
            return max(0.001, (1.0 - self._tokens) / self._rate)
        return tick_s

    def _send_live(self, room: int) -> int:
        records = self._spool.read(self._live_cursor, room)
        for r in records:
            self._live_cursor = r.id
            self._hand_over(r)
        return len(records)

    def _send_backlog(self, room: int) -> int:
        now = self._now()
        self._tokens = min(max(1.0, self._rate * 0.1), self._tokens + (now - self._tokens_at) * self._rate)
        self._tokens_at = now
        allowed = min(room, int(self._tokens))
        sent = 0
        while sent < allowed:
            records = self._spool.read(self._backlog_cursor, allowed - sent, self._backlog_end)
            if not records:
                self._backlog_cursor = self._backlog_end
                break
            for r in records:
                self._backlog_cursor = r.id
                if r.id not in self._pending:
                    self._hand_over(r)
                    sent += 1
        self._tokens -= sent
        return sent

    def _hand_over(self, record: OutgoingRecord) -> None:
        mid = self._publish(record)
        if mid is None:
            self.drop(record.id)
            return
        self._window[mid] = (record.id, self._now(), record.topic)
        self._pending.add(record.id)
        self.published += 1
