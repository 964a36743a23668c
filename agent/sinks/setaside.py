"""Messages the broker cannot take: set aside once, never resent in a loop, never blocking the queue.

Three ways to know: a record is larger than ``mqtt.max_message_bytes``; an MQTT 5 broker announced a smaller
Maximum Packet Size in its CONNACK (mosquitto does for ``max_packet_size`` and, in 2.0, for
``message_size_limit``; it then closes the connection of a client that sends more); or, with a broker that says
nothing (MQTT 3.1.1), the same large record (over ``SUSPECT_BYTES``) was the largest one in flight when two
sessions in a row were closed by the broker shortly after they started. Such a record is moved to the spool's
``set_aside`` table (``SqliteSpool.set_aside``), counted, and logged once per topic with its size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent.sinks.forward import Forwarder, OutgoingRecord, SpoolReader
from agent.sinks.limits import packet_bytes

log = logging.getLogger("agent.sinks.mqtt")

SUSPECT_BYTES = 65536  # smaller messages are never blamed for a lost connection
SHORT_SESSION_S = 30.0  # a broker that refuses a message closes the connection right after it


class SetAside:
    def __init__(self, spool: SpoolReader, where: str, max_message_bytes: int) -> None:
        self._spool = spool
        self._where = where
        self._configured = max_message_bytes
        self.broker_max: int | None = None  # from an MQTT 5 CONNACK
        self.count = 0
        self._topics: set[str] = set()
        self._suspect: int | None = None
        self._session_start = 0.0
        self.last_error = ""

    @property
    def limit(self) -> int:
        return min(self._configured, self.broker_max or self._configured)

    def session_up(self, broker_max: int | None) -> None:
        self.broker_max = broker_max
        self._session_start = time.monotonic()

    def too_big(self, record: OutgoingRecord) -> bool:
        """Before publishing: set ``record`` aside (True) when it cannot fit."""
        size = packet_bytes(record.topic, record.payload)
        if size <= self.limit:
            return False
        which = "mqtt.max_message_bytes" if self.limit == self._configured else "the broker's maximum packet size"
        self.put(record.id, record.topic, size, f"{size} B is over {which} ({self.limit} B)")
        return True

    def on_loss(self, forward: Forwarder, forget: Callable[[int], None]) -> None:
        """A session the broker had accepted was lost: blame its largest message in flight the second time."""
        big = forward.largest_in_flight()
        if big is None or big[3] < SUSPECT_BYTES or time.monotonic() - self._session_start > SHORT_SESSION_S:
            self._suspect = None
            return
        mid, rid, topic, payload_size = big
        size = packet_bytes(topic, b"") + payload_size
        if self._suspect != rid:
            self._suspect = rid
            return
        self._suspect = None
        forget(mid)
        forward.forget(mid)
        self.put(rid, topic, size, f"the broker closed the connection twice while this {size} B message was in flight")

    def put(self, record_id: int, topic: str, size: int, reason: str) -> None:
        self._spool.set_aside(record_id, reason)
        self.count += 1
        if topic not in self._topics:
            self._topics.add(topic)
            self.last_error = f"{self._where}: a {size} B message on {topic} was set aside, not published: {reason}"
            log.error(
                "%s; it stays in the spool's set_aside table, later ones on this topic are counted, not logged",
                self.last_error,
            )
