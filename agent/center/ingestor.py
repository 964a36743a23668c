# size: one class, the pipeline (batch, write, retry, quarantine, ack) and the liveness it shares
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
- Hostile or broken input never stops the pipeline: intake.py turns each message into lines and/or a dead letter
  (size, wire schema, topic, limits). An exception from our own code while handling one message is a bug: logged
  once with its traceback, the message quarantined, counted (``internal_errors``) and acked, so it cannot come
  back and kill the ingestor again. An unexpected exception from the writer is treated as a refusal (message by
  message, quarantined); one from the dead-letter sink as an outage (retried, nothing acked).
- Liveness: every wait in the pipeline declares how long it may take (:meth:`Ingestor.stalled`); the systemd
  watchdog is pinged only while the pipeline keeps those promises, whether or not messages arrive.
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
from typing import Any

from agent.center.config import CenterConfig
from agent.center.consumer import Inbound, MqttConsumer, share_topic
from agent.center.deadletter import DeadLetterSink
from agent.center.gaps import GapTracker
from agent.center.influx import InfluxWriteError, InfluxWriter
from agent.center.intake import Entry, IngestStats, Intake
from agent.center.schema import gap_line

log = logging.getLogger("agent.center")

_GRACE_S = 10.0  # how late a pipeline step may be beyond its own bound before the ingestor counts as stuck
_MAX_PEER_RANGE = 1_000_000  # seqs in one run of a peer's report; longer runs are not believed


class Ingestor:
    def __init__(
        self,
        config: CenterConfig,
        writer: InfluxWriter,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        ready: Callable[[], None] = lambda: None,
        name: str | None = None,
    ) -> None:
        self.config = config
        self.name = name or config.mqtt.client_id
        self._writer = writer
        self._monotonic = monotonic
        self._ready = ready
        self._due = monotonic()  # run() starts the pipeline at once; its first wait sets the bound
        self._doing = "starting"
        self._bugs_logged: set[tuple[str, str, int]] = set()
        self._gaps = GapTracker(config.gaps.reorder_timeout_s)
        self._seen: dict[tuple[str, str, str], dict[int, float]] = {}  # seq -> wire ts, since the last share
        self._share_topic = share_topic(config.mqtt)
        self._failing: str | None = None
        self._gaps_quiet_until = 0.0
        self._clock = clock
        self._stats = IngestStats()
        self._intake = Intake(config, self._stats, clock)
        self._consumer: MqttConsumer | None = None
        self._dead: DeadLetterSink | None = None

    def stats(self) -> IngestStats:
        return self._stats

    @property
    def writer_target(self) -> str:
        return self._writer.target

    def connected(self) -> bool:
        """Connected to the broker right now."""
        return self._consumer is not None and self._consumer.connected.is_set()

    def stalled(self) -> str | None:
        """None while the pipeline keeps the bound its current wait declared (plus a grace): it collects, writes
        or backs off as it should, whether or not messages arrive. Else what it is stuck in (for the watchdog)."""
        late = self._monotonic() - self._due
        if late <= _GRACE_S:
            return None
        return f"{self.name}: the pipeline is stuck {self._doing}, {late:.0f} s past its bound"

    def _expect(self, within_s: float, doing: str) -> None:
        """The pipeline is about to wait for at most ``within_s`` while ``doing`` something."""
        due = self._monotonic() + within_s
        if due >= self._due:
            self._due, self._doing = due, doing

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch in hand and disconnect (the session stays)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Inbound | None] = asyncio.Queue()

        def deliver(item: Inbound) -> None:  # paho's network thread
            with contextlib.suppress(RuntimeError):  # the loop is closing: un-acked, so the broker redelivers it
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def subscribed() -> None:  # paho's network thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._ready)

        consumer = MqttConsumer(self.config.mqtt, deliver, subscribed)
        self._consumer = consumer
        self._dead = DeadLetterSink(self.config.dead_letter, lambda t, p: consumer.publish(t, p, qos=1), self._clock)
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

    async def _collect(self, queue: asyncio.Queue[Inbound | None]) -> tuple[list[Entry], list[str]]:
        """One batch: up to ``batch_points`` points or ``flush_interval_ms`` after its first message."""
        cfg = self.config.influx
        entries: list[Entry] = []
        points = 0
        self._expect(self.config.gaps.reorder_timeout_s / 2, "waiting for messages")
        item = await _next(queue, self.config.gaps.reorder_timeout_s / 2)
        deadline = self._monotonic() + cfg.flush_interval_ms / 1000
        while item is not None:
            points += self._add(item, entries)
            if points >= cfg.batch_points:
                break
            self._expect(max(0.0, deadline - self._monotonic()), "collecting a batch")
            item = await _next(queue, deadline - self._monotonic())
        return entries, self._due_gaps()

    async def _share_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.config.gaps.share_interval_s)
            except TimeoutError:
                self._share()

    def _add(self, item: Inbound, entries: list[Entry]) -> int:
        """Decode one message into its lines and/or a dead letter; returns the number of points it adds. Never
        raises: whatever goes wrong with one message stays with that message."""
        if item.topic == self._share_topic:
            self._peer_report(item.payload)
            return 0
        self._stats.received += 1
        entry = Entry(item)
        entries.append(entry)
        try:
            arrival = self._intake.admit(entry)
        except Exception as exc:  # a bug of ours; the message must not come back and kill us again
            self._stats.internal_errors += 1
            self._bug(exc, f"while handling a message on {item.topic}")
            entry.lines = []
            entry.quarantine(f"internal error (a bug, please report it): {type(exc).__name__}: {exc}")
            return 0
        if arrival is not None:  # arrived, even if refused: not a gap
            a = arrival
            self._gaps.observe(a.site, a.gateway, a.boot, a.seq, a.ts, self._monotonic())
            self._seen.setdefault((a.site, a.gateway, a.boot), {})[a.seq] = a.ts
        return len(entry.lines)

    def _bug(self, exc: BaseException, where: str) -> None:
        """Log a bug of ours with its traceback, once per place it was raised (then it is only counted)."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        key = (type(exc).__name__, tb.tb_frame.f_code.co_filename if tb else "", tb.tb_lineno if tb else 0)
        if key not in self._bugs_logged:
            self._bugs_logged.add(key)
            log.error("%s: bug %s; the message is quarantined and the ingestor goes on", self.name, where, exc_info=exc)

    async def _flush(self, entries: list[Entry], gap_lines: list[str], stop: asyncio.Event) -> bool:
        """Write, quarantine, then ack. False when stopped before InfluxDB took the batch (nothing acked)."""
        body = [line for e in entries for line in e.lines] + gap_lines
        if body:
            try:
                if not await self._retrying(lambda: self._writer.write(_join(body)), stop, refuse_bugs=True):
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
            put = functools.partial(sink.put, dead)
            if not await self._retrying(put, stop, bound_s=10.0 * len(dead), what="storing dead letters"):
                return False
            more = f" and {len(dead) - 1} more" if len(dead) > 1 else ""
            log.warning("%s: quarantined a message on %s%s: %s", self.name, dead[0].topic, more, dead[0].reason[:300])
            self._stats.quarantined += len(dead)
            self._stats.dead_letter(sink.stats.rotations, sink.stats.deleted_files, sink.stats.deleted_bytes)
        assert self._consumer is not None
        for e in entries:
            if self._consumer.ack(e.item):
                self._stats.acked += 1
            else:
                self._stats.stale_acks += 1
        self._stats.batches += 1
        return True

    async def _write_each(self, entries: list[Entry], gap_lines: list[str], stop: asyncio.Event) -> bool:
        """Write message by message; a message InfluxDB refuses becomes a dead letter with its error text."""
        for e in entries:
            if not e.lines:
                continue
            try:
                write = functools.partial(self._writer.write, _join(e.lines))
                if not await self._retrying(write, stop, refuse_bugs=True):
                    return False
                self._stats.points_written += len(e.lines)
            except InfluxWriteError as exc:
                self._stats.refused += 1
                e.quarantine(f"InfluxDB refused it: {exc}")
        if gap_lines:
            try:
                if not await self._retrying(functools.partial(self._writer.write, _join(gap_lines)), stop):
                    return False
                self._stats.points_written += len(gap_lines)
            except InfluxWriteError as exc:
                log.error("%s: InfluxDB refused the gap points (%s); they are only in this log", self.name, exc)
        return True

    async def _retrying(
        self,
        write: Callable[[], None],
        stop: asyncio.Event,
        *,
        refuse_bugs: bool = False,
        bound_s: float = 0.0,
        what: str = "writing to InfluxDB",
    ) -> bool:
        """Run ``write`` in a worker thread until it succeeds (True) or ``stop`` is set while waiting (False).
        Non-retriable InfluxWriteError propagates. Any other exception is a bug: logged once with its traceback,
        then with ``refuse_bugs`` raised as a refusal (the messages are quarantined one by one), else retried like
        an outage (nothing is acknowledged that was not stored)."""
        delay = self.config.influx.retry_initial_ms / 1000
        bound_s = bound_s or 2 * self.config.influx.timeout_ms / 1000
        while True:
            self._expect(bound_s, what)
            try:
                await asyncio.to_thread(write)
            except InfluxWriteError as exc:
                if not exc.retriable:
                    raise
                self._failed(str(exc))
            except (OSError, RuntimeError) as exc:  # dead-letter file or topic
                self._failed(f"dead letter: {exc}")
            except Exception as exc:
                self._bug(exc, "while writing")
                if refuse_bugs:
                    raise InfluxWriteError(
                        f"internal error (a bug): {type(exc).__name__}: {exc}", retriable=False
                    ) from exc
                self._failed(f"internal error: {type(exc).__name__}: {exc}")
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
            self._expect(delay, f"backing off after a failure {what}")
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
                    if not 0 <= int(hi) - int(lo) < _MAX_PEER_RANGE:
                        raise ValueError(f"a run of {int(hi) - int(lo) + 1} seqs")
                    for seq in range(int(lo), int(hi) + 1):
                        self._gaps.observe(str(site), str(gw), str(boot), seq, float(ts), now, local=False)
            for site, gw, boot, low in report.get("low", []):
                self._gaps.advance_to(str(site), str(gw), str(boot), int(low), now)
        except Exception as exc:  # a peer's report is advice; a malformed one must not stop us
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
