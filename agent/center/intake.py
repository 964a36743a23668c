"""One received message in: what it writes (line protocol) and/or why it is quarantined (its dead letter).

    size ─► decode + validate (wire schema) ─► topic matches payload ─► limits (limits.py) ─► lines

A payload over ``limits.max_message_bytes`` is not even parsed (its letter keeps its first max_message_bytes).
The wire schema refuses what no database can store (NaN, inf, 1e400, 10**400, names that are not names). The
limits refuse items stamped outside the clock-skew window and new series beyond the gateway's quota; the rest of
the message is written and the whole message goes to the dead letter with the reasons. Every refusal is counted
in :class:`IngestStats`. Synchronous and pure apart from the counters and the limits' memory of series; an
exception raised here is a bug of ours, which the ingestor handles (see ingestor.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from agent.center.config import CenterConfig
from agent.center.consumer import Inbound
from agent.center.deadletter import DeadLetter
from agent.center.limits import Admission, SeriesFile
from agent.center.schema import kpi_lines, sample_lines, status_lines
from agent.wire import KpiMessage, SamplesMessage, StatusMessage, decode

log = logging.getLogger("agent.center")


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    acked: int = 0
    stale_acks: int = 0  # not acked because the connection changed; the broker redelivers them
    points_written: int = 0
    batches: int = 0
    quarantined: int = 0  # messages stored in the dead letter, whole or in part (each counted once)
    refused: int = 0  # of those, refused by InfluxDB
    invalid: int = 0  # not valid wire JSON (incl. non-finite or out-of-range numbers), or not matching the topic
    oversized: int = 0  # larger than limits.max_message_bytes
    skewed: int = 0  # samples, KPIs or statuses stamped outside the clock-skew window
    over_limit: int = 0  # items refused by max_items_per_message or max_series_per_gateway
    internal_errors: int = 0  # messages a bug of ours could not handle
    write_retries: int = 0
    gaps: int = 0
    missing_seqs: int = 0
    dead_letter_rotations: int = 0  # dead-letter files rotated at dead_letter.max_file_bytes
    dead_letter_deleted_files: int = 0  # rotated dead-letter files deleted for age or the total cap
    dead_letter_deleted_bytes: int = 0

    def dead_letter(self, rotations: int, deleted_files: int, deleted_bytes: int) -> None:
        """The dead-letter sink's counts so far (agent.center.deadletter.DeadLetterStats)."""
        self.dead_letter_rotations = rotations
        self.dead_letter_deleted_files = deleted_files
        self.dead_letter_deleted_bytes = deleted_bytes

    def summary(self) -> str:
        """One line for ``systemctl status`` (STATUS=)."""
        return (
            f"received {self.received}, acked {self.acked}, {self.points_written} points written; quarantined "
            f"{self.quarantined} (invalid {self.invalid}, oversized {self.oversized}, skewed {self.skewed}, "
            f"over limit {self.over_limit}, refused {self.refused}, internal errors {self.internal_errors}); "
            f"gaps {self.gaps}; dead letter rotated {self.dead_letter_rotations}, deleted "
            f"{self.dead_letter_deleted_files} files"
        )


@dataclass(slots=True)
class Entry:
    """One received message on its way through a batch: its lines, and its dead letter if any part is refused."""

    item: Inbound
    lines: list[str] = field(default_factory=list)
    dead: DeadLetter | None = None

    def quarantine(self, reason: str, payload: bytes | None = None) -> None:
        """Add ``reason`` to the message's dead letter (one letter per message, reasons joined)."""
        if self.dead is not None:
            reason = f"{self.dead.reason}; {reason}"
        item = self.item
        self.dead = DeadLetter(item.received_ts, item.topic, reason, item.payload if payload is None else payload)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A samples or kpi message that arrived (written or not): its place in the gateway's seq stream."""

    site: str
    gateway: str
    boot: str
    seq: int
    ts: float  # the message's ts when believable, else the time it was received


class Intake:
    def __init__(self, config: CenterConfig, stats: IngestStats, clock: Callable[[], float]) -> None:
        self.config = config
        self._stats = stats
        path = config.series_file()
        self._admission = Admission(config.limits, clock, SeriesFile(path) if path is not None else None)
        self._save_failing = False
        if path is None:
            log.warning(
                "the series quota (limits.max_series_per_gateway) is kept in memory only: set limits.series_file "
                "or dead_letter.file, or every restart gives each gateway a fresh quota"
            )

    def admit(self, entry: Entry) -> Arrival | None:
        """Fill ``entry.lines`` and/or ``entry.dead``; return the message's seq-stream place for gap tracking."""
        item = entry.item
        limit = self.config.limits.max_message_bytes
        if len(item.payload) > limit:
            self._stats.oversized += 1
            entry.quarantine(
                f"{len(item.payload)} bytes, more than limits.max_message_bytes ({limit}); only the first {limit} "
                "bytes are kept here",
                item.payload[:limit],
            )
            return None
        try:
            msg = decode(item.payload)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:5])
            self._stats.invalid += 1
            entry.quarantine(f"invalid payload: {reason}")
            return None
        mismatch = topic_mismatch(item.topic, self.config.mqtt.topic_prefix, msg)
        if mismatch:
            self._stats.invalid += 1
            entry.quarantine(mismatch)
            return None
        verdict = self._admission.check(msg)
        self._save_series()
        self._stats.skewed += verdict.skewed
        self._stats.over_limit += verdict.over_limit
        if verdict.refused:
            entry.quarantine("; ".join(verdict.refused))
        out = verdict.message
        influx = self.config.influx
        if isinstance(out, SamplesMessage):
            entry.lines = list(sample_lines(out, influx.precision, influx.extra_tags))
        elif isinstance(out, KpiMessage):
            entry.lines = list(kpi_lines(out, influx.precision))
        elif isinstance(out, StatusMessage):
            entry.lines = list(status_lines(out, influx.precision, item.received_ts))
        if isinstance(msg, StatusMessage):
            return None
        ts = msg.ts if self._admission.believable(msg.ts) else item.received_ts
        return Arrival(msg.site, msg.gateway, msg.boot, msg.seq, ts)

    def _save_series(self) -> None:
        """Persist new series before their message is acknowledged; a failing disk is logged once, then recovery."""
        try:
            self._admission.save()
        except OSError as exc:
            if not self._save_failing:
                log.error("series quota file: %s; the quota is kept in memory until it can be written", exc)
            self._save_failing = True
        else:
            if self._save_failing:
                log.info("series quota file: written again")
            self._save_failing = False


def topic_mismatch(topic: str, prefix: str, msg: SamplesMessage | KpiMessage | StatusMessage) -> str:
    """A gateway may only speak for itself: the topic's site/gateway/device must match the payload's."""
    parts = topic.split("/")
    n = len(prefix.split("/"))
    rest = parts[n:]
    want = [msg.site, msg.gateway]
    if isinstance(msg, SamplesMessage):
        want += [msg.device, "samples"]
    else:
        want.append(msg.type)
    if rest != want:
        return f"topic {topic} does not match the payload (site {msg.site}, gateway {msg.gateway}, type {msg.type})"
    return ""
