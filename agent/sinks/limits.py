"""How big an MQTT message may be, and how a poll that would be too big is cut into messages that fit.

A message's size is counted as its PUBLISH packet: payload, topic and ``PACKET_OVERHEAD`` bytes of header (fixed
header, topic length, packet id, MQTT 5 properties). ``mqtt.max_message_bytes`` bounds it (default 256 KiB, below
the centre's 512 KiB); an MQTT 5 broker may announce a smaller Maximum Packet Size in its CONNACK.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

PACKET_OVERHEAD = 16
MAX_MESSAGE_BYTES = 262144  # mqtt.max_message_bytes by default

T = TypeVar("T")


def packet_bytes(topic: str, payload: bytes) -> int:
    return len(payload) + len(topic.encode()) + PACKET_OVERHEAD


def split_to_fit(
    items: Sequence[T], encode: Callable[[Sequence[T]], bytes], limit: int
) -> list[tuple[Sequence[T], bytes]]:
    """``items`` in consecutive chunks (order kept) whose encodings are each at most ``limit`` bytes; one chunk
    when everything fits. An item too big even alone is its own chunk (the sink sets such a message aside)."""
    whole = encode(items)
    if len(whole) <= limit or len(items) <= 1:
        return [(items, whole)]
    parts = max(2, -(-len(whole) * 10 // (limit * 9)))  # 10 % headroom: items differ in size
    size = -(-len(items) // parts)
    out: list[tuple[Sequence[T], bytes]] = []
    for start in range(0, len(items), size):
        out += split_to_fit(items[start : start + size], encode, limit)
    return out
