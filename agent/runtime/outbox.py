"""From a poll to spooled messages: encoding (split into messages that fit ``mqtt.max_message_bytes``) and the
group commit (``Turn``): the polls that finish within ``spool.group_commit_ms`` of the first (0: in one event-loop
turn) go to the spool in one transaction, and only then to the sink (durable first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.model import PollResult, Sample
from agent.sinks.limits import packet_bytes, split_to_fit
from agent.spool.base import NewRecord
from agent.wire import encode_good, encode_samples


class _Spool(Protocol):
    def append_many(self, items: Sequence[NewRecord]) -> list[int | None]: ...


class _Sink(Protocol):
    def offer(self, record_id: int, topic: str, payload: bytes) -> None: ...


def encode_poll(
    result: PollResult, *, site: str, gateway: str, boot: str, first_seq: int, tags: dict[str, str], topic: str,
    max_message_bytes: int,
) -> list[bytes]:  # fmt: skip
    """The samples message(s) of one poll, with seqs ``first_seq``, ``first_seq + 1``, ...: one message, or, for a
    poll too big for one, several (each a complete samples message the centre takes on its own)."""

    limit = max_message_bytes - packet_bytes(topic, b"")
    good = result.good
    if good is not None:  # a healthy poll: encoded from its columns, unless it needs cutting into several messages
        payload = encode_good(
            site=site, gateway=gateway, boot=boot, seq=first_seq, device=result.device, ts=result.ts, tags=tags,
            reads=good,
        )  # fmt: skip
        if len(payload) <= limit or len(good.values) <= 1:
            return [payload]

    def encode(samples: Sequence[Sample], seq: int = first_seq) -> bytes:
        return encode_samples(
            site=site, gateway=gateway, boot=boot, seq=seq, device=result.device, ts=result.ts, tags=tags,
            samples=tuple(samples),
        )  # fmt: skip

    chunks = split_to_fit(result.samples, encode, limit)
    if len(chunks) == 1:
        return [chunks[0][1]]
    return [encode(c, first_seq + k) for k, (c, _) in enumerate(chunks)]


class Turn:
    """The messages of the open group commit window, not yet spooled."""

    def __init__(self) -> None:
        self.items: list[NewRecord] = []

    def commit(self, spool: _Spool, sink: _Sink | None) -> None:
        """Spool them in one transaction, then offer each stored one to the sink."""
        items, self.items = self.items, []
        if not items:
            return
        ids = spool.append_many(items)
        if sink is not None:
            for (topic, payload, *_), record_id in zip(items, ids, strict=True):
                if record_id is not None:  # None: the disk refused it (counted by the spool)
                    sink.offer(record_id, topic, payload)
