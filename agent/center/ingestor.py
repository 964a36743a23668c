"""The ingestor: MQTT (shared subscription, manual ack) -> validate -> InfluxDB, batched, retried, never lossy.

One asyncio task runs the pipeline; paho's network thread only enqueues; InfluxDB writes run in a worker thread,
one batch at a time, while the next batch is being decoded.

    receive ─► decode + check topic ─► lines ─► batch (batch_points or flush_interval_ms) ─► write ─► ack all

- A message is acknowledged only after InfluxDB accepted its points (or, for a refused payload, after it was
  quarantined). Acks go out in the order the messages came in.
- A retriable write failure (network, 5xx, 429) keeps the batch and retries it with exponential backoff, forever;
  nothing new is acknowledged meanwhile, so the broker stops sending once ``receive_maximum`` messages are
  un-acked (back-pressure) and keeps the rest queued in our session. Logged once as failed, once as recovered.
- A refused write (other 4xx) is retried message by message; the messages InfluxDB refuses are quarantined with
  its error text. A malformed payload is quarantined with the validation error. Both are counted and acked.
- On stop the batch in hand is written and acknowledged if InfluxDB takes it; if not, it is left un-acked and the
  broker redelivers it to this client id later. Redelivery overwrites the same points (see schema.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.center.config import CenterConfig
from agent.center.consumer import Inbound, MqttConsumer, share_topic
from agent.center.deadletter import DeadLetter, DeadLetterSink
from agent.center.gaps import GapTracker
from agent.center.influx import InfluxWriteError, InfluxWriter
from agent.center.schema import gap_line, kpi_lines, sample_lines, status_lines
from agent.wire import KpiMessage, SamplesMessage, decode

log = logging.getLogger("agent.center")


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    acked: int = 0
    stale_acks: int = 0  # not acked because the connection changed; the broker redelivers them
    points_written: int = 0
    batches: int = 0
    quarantined: int = 0  # malformed, mismatched or refused, each stored in the dead letter
    refused: int = 0  # of those, refused by InfluxDB
    write_retries: int = 0
    gaps: int = 0
    missing_seqs: int = 0


@dataclass(slots=True)
class _Entry:
    item: Inbound
    lines: list[str] = field(default_factory=list)
    dead: DeadLetter | None = None


class Ingestor:
    def __init__(
        self,
        config: CenterConfig,
        writer: InfluxWriter,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.mqtt.client_id
        self._writer = writer
        self._monotonic = monotonic
        self._gaps = GapTracker(config.gaps.reorder_timeout_s)
        self._seen: dict[tuple[str, str, str], dict[int, float]] = {}  # seq -> wire ts, since the last share
        self._share_topic = share_topic(config.mqtt)
        self._failing: str | None = None
        self._gaps_quiet_until = 0.0
        self._stats = IngestStats()
        self._consumer: MqttConsumer | None = None
        self._dead: DeadLetterSink | None = None

    def stats(self) -> IngestStats:
        return self._stats

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch in hand and disconnect (the session stays)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Inbound | None] = asyncio.Queue()

        def deliver(item: Inbound) -> None:  # paho's network thread
            with contextlib.suppress(RuntimeError):  # the loop is closing: un-acked, so the broker redelivers it
                loop.call_soon_threadsafe(queue.put_nowait, item)

        consumer = MqttConsumer(self.config.mqtt, deliver)
        self._consumer = consumer
        self._dead = DeadLetterSink(self.config.dead_letter, lambda t, p: consumer.publish(t, p, qos=1))
        consumer.start()
        log.info("%s: writing to %s", self.name, self._writer.target)

        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_wake_on_stop(stop, queue))
                tasks.create_task(self._share_loop(stop))
                await self._pipeline(queue, stop)
                stop.set()
        finally:
            await asyncio.to_thread(consumer.stop)
            await asyncio.to_thread(self._writer.close)
            log.info("%s: stopped (%s)", self.name, self._stats)

    async def _pipeline(self, queue: asyncio.Queue[Inbound | None], stop: asyncio.Event) -> None:
        """Collect the next batch while the previous one is being written; flushes (and so acks) stay in order."""
        writing: asyncio.Task[bool] | None = None
        try:
            while not stop.is_set():
                entries, gap_lines = await self._collect(queue)
                if writing is not None:
                    ok = await writing
                    writing = None
                    if not ok:
                        return
                if entries or gap_lines:
                    writing = asyncio.create_task(self._flush(entries, gap_lines, stop))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writing

    async def _collect(self, queue: asyncio.Queue[Inbound | None]) -> tuple[list[_Entry], list[str]]:
        """One batch: up to ``batch_points`` points or ``flush_interval_ms`` after its first message."""
        cfg = self.config.influx
        entries: list[_Entry] = []
        points = 0
        item = await _next(queue, self.config.gaps.reorder_timeout_s / 2)
        deadline = self._monotonic() + cfg.flush_interval_ms / 1000
        while item is not None:
            points += self._add(item, entries)
            if points >= cfg.batch_points:
                break
            item = await _next(queue, deadline - self._monotonic())
        return entries, self._due_gaps()

    async def _share_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.config.gaps.share_interval_s)
            except TimeoutError:
                self._share()

    def _add(self, item: Inbound, entries: list[_Entry]) -> int:
        """Decode one message into its lines (or a dead letter); returns the number of points it adds."""
        if item.topic == self._share_topic:
            self._peer_report(item.payload)
            return 0
        self._stats.received += 1
        entry = _Entry(item)
        entries.append(entry)
        precision = self.config.influx.precision
        try:
            msg = decode(item.payload)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()[:5])
            entry.dead = DeadLetter(item.received_ts, item.topic, f"invalid payload: {reason}", item.payload)
            return 0
        except ValueError as exc:
            entry.dead = DeadLetter(item.received_ts, item.topic, f"invalid payload: {exc}", item.payload)
            return 0
        mismatch = _topic_mismatch(item.topic, self.config.mqtt.topic_prefix, msg)
        if mismatch:
            entry.dead = DeadLetter(item.received_ts, item.topic, mismatch, item.payload)
            return 0
        if isinstance(msg, SamplesMessage):
            entry.lines = list(sample_lines(msg, precision, self.config.influx.extra_tags))
        elif isinstance(msg, KpiMessage):
            entry.lines = list(kpi_lines(msg, precision))
        else:
            entry.lines = list(status_lines(msg, precision, item.received_ts))
        if isinstance(msg, SamplesMessage | KpiMessage):
            self._gaps.observe(msg.site, msg.gateway, msg.boot, msg.seq, msg.ts, self._monotonic())
            self._seen.setdefault((msg.site, msg.gateway, msg.boot), {})[msg.seq] = msg.ts
        return len(entry.lines)

    async def _flush(self, entries: list[_Entry], gap_lines: list[str], stop: asyncio.Event) -> bool:
        """Write, quarantine, then ack. False when stopped before InfluxDB took the batch (nothing acked)."""
        body = [line for e in entries for line in e.lines] + gap_lines
        if body:
            try:
                if not await self._retrying(lambda: self._writer.write(_join(body)), stop):
                    return False
                self._stats.points_written += len(body)
            except InfluxWriteError as exc:
                log.warning("%s: InfluxDB refused a batch (%s); writing it message by message", self.name, exc)
                if not await self._write_each(entries, gap_lines, stop):
                    return False
        dead = [e.dead for e in entries if e.dead is not None]
        if dead:
            assert self._dead is not None
            sink = self._dead
            if not await self._retrying(lambda: sink.put(dead), stop):
                return False
            more = f" and {len(dead) - 1} more" if len(dead) > 1 else ""
            log.warning("%s: quarantined a message on %s%s: %s", self.name, dead[0].topic, more, dead[0].reason[:300])
            self._stats.quarantined += len(dead)
        assert self._consumer is not None
        for e in entries:
            if self._consumer.ack(e.item):
                self._stats.acked += 1
            else:
                self._stats.stale_acks += 1
        self._stats.batches += 1
        return True

    async def _write_each(self, entries: list[_Entry], gap_lines: list[str], stop: asyncio.Event) -> bool:
        """Write message by message; a message InfluxDB refuses becomes a dead letter with its error text."""
        for e in entries:
            if not e.lines:
                continue
            try:
                if not await self._retrying(functools.partial(self._writer.write, _join(e.lines)), stop):
                    return False
                self._stats.points_written += len(e.lines)
            except InfluxWriteError as exc:
                self._stats.refused += 1
                e.dead = DeadLetter(e.item.received_ts, e.item.topic, f"InfluxDB refused it: {exc}", e.item.payload)
        if gap_lines:
            try:
                if not await self._retrying(functools.partial(self._writer.write, _join(gap_lines)), stop):
                    return False
                self._stats.points_written += len(gap_lines)
            except InfluxWriteError as exc:
                log.error("%s: InfluxDB refused the gap points (%s); they are only in this log", self.name, exc)
        return True

    async def _retrying(self, write: Callable[[], None], stop: asyncio.Event) -> bool:
        """Run ``write`` in a worker thread until it succeeds (True) or ``stop`` is set while waiting (False).
        Non-retriable InfluxWriteError propagates."""
        delay = self.config.influx.retry_initial_ms / 1000
        while True:
            try:
                await asyncio.to_thread(write)
            except InfluxWriteError as exc:
                if not exc.retriable:
                    raise
                self._failed(str(exc))
            except (OSError, RuntimeError) as exc:  # dead-letter file or topic
                self._failed(f"dead letter: {exc}")
            else:
                if self._failing is not None:
                    log.info("%s: recovered: writes succeed again", self.name)
                    self._failing = None
                    # Group members were stalled too: give them time to catch up before judging gaps.
                    self._gaps_quiet_until = self._monotonic() + 2 * self.config.gaps.reorder_timeout_s
                return True
            self._stats.write_retries += 1
            if stop.is_set():
                return False
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return False
            except TimeoutError:
                delay = min(delay * 2, self.config.influx.retry_max_ms / 1000)

    def _failed(self, reason: str) -> None:
        if self._failing is None:
            log.error("%s: failed: %s; retrying with backoff, not acknowledging meanwhile", self.name, reason)
        self._failing = reason

    def _due_gaps(self) -> list[str]:
        lines: list[str] = []
        if self._monotonic() < self._gaps_quiet_until:
            return lines
        for gap in self._gaps.due(self._monotonic()):
            self._stats.gaps += 1
            self._stats.missing_seqs += gap.missing
            log.warning(
                "%s: %d message(s) missing: seq %d..%d of boot %s (site %s)",
                gap.gateway,
                gap.missing,
                gap.first_seq,
                gap.last_seq,
                gap.boot,
                gap.site,
            )
            lines.append(
                gap_line(
                    gap.site, gap.gateway, gap.boot, gap.first_seq, gap.last_seq, gap.ts, self.config.influx.precision
                )
            )
        return lines

    def _share(self) -> None:
        """Tell group members which seqs we received since the last report, and each stream's low watermark."""
        if self._consumer is None or not self._gaps.streams():
            return
        seen = [[site, gw, boot, _ranges(seqs)] for (site, gw, boot), seqs in self._seen.items()]
        self._seen.clear()
        low = [list(w) for w in self._gaps.watermarks()]
        payload = json.dumps({"member": self.name, "seen": seen, "low": low}, separators=(",", ":")).encode()
        self._consumer.publish(self._share_topic, payload, qos=0)

    def _peer_report(self, payload: bytes) -> None:
        try:
            report: Any = json.loads(payload)
            if report["member"] == self.name:
                return
            now = self._monotonic()
            for site, gw, boot, ranges in report["seen"]:
                for lo, hi, ts in ranges:
                    for seq in range(int(lo), int(hi) + 1):
                        self._gaps.observe(str(site), str(gw), str(boot), seq, float(ts), now, local=False)
            for site, gw, boot, low in report.get("low", []):
                self._gaps.advance_to(str(site), str(gw), str(boot), int(low), now)
        except (ValueError, TypeError, KeyError) as exc:
            log.debug("%s: ignored a malformed report on %s: %s", self.name, self._share_topic, exc)


async def _wake_on_stop(stop: asyncio.Event, queue: asyncio.Queue[Inbound | None]) -> None:
    await stop.wait()
    queue.put_nowait(None)


async def _next(queue: asyncio.Queue[Inbound | None], timeout_s: float) -> Inbound | None:
    """The next message, or None when ``timeout_s`` passed or the stop sentinel came (which stays queued)."""
    try:
        item = queue.get_nowait()
    except asyncio.QueueEmpty:
        if timeout_s <= 0:
            return None
        try:
            item = await asyncio.wait_for(queue.get(), timeout_s)
        except TimeoutError:
            return None
    if item is None:
        queue.put_nowait(None)
    return item


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _ranges(seen: dict[int, float]) -> list[list[float]]:
    """Seqs as ``[first, last, ts of first]`` runs. A message right after a hole always starts a run, so its ts
    (the time a gap point gets) travels with it."""
    out: list[list[float]] = []
    for seq in sorted(seen):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq, seen[seq]])
    return out


def _topic_mismatch(topic: str, prefix: str, msg: Any) -> str:
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
