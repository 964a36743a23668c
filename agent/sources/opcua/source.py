"""``OpcuaSource``: one OPC UA device (one endpoint, one session) as a ``agent.sources.base.Source``.

Two tasks in one TaskGroup:

- the supervisor connects (``OpcuaSession``), subscribes (or not, in poll mode), consumes data-change notifications
  into the latest reading per point, and when the session is lost (socket closed, keep-alive or watchdog probe
  missing, subscription status bad) tears it down (subscription deleted and session closed when the server still
  answers) and reconnects with a backoff capped at ``RETRY_CAP_S`` so it is back within 10 s of the server being
  reachable. Refused credentials or an untrusted server certificate are not a network blip: they back off from
  ``SECURITY_RETRY_S`` (no retry storm) and are logged once.
- the ticker emits one ``PollResult`` per ``interval_s`` with every point exactly once: the latest value from the
  subscription (or from a polled Read), ``bad`` with reason ``connection lost: ...`` for every point while the
  session is down (the gap is flagged, never interpolated), and ``stale`` for a point with no value since the
  current session began.

No orphans: a session that could not be closed (network loss, crash) leaves its token in ``state_dir/opcua/
<device>.session.json`` (mode 0600; a temporary folder without ``state_dir``); the next connect re-activates that
session and closes it with its subscriptions, so the server never keeps more than the live one for long.

Sample timestamps: ``ts`` is the tick at which the agent vouched for the value (the subscription was alive, so an
unchanged value is current); ``source_ts`` is the OPC UA SourceTimestamp (server timestamp when the source gave
none). Every state change is logged once per device: "failed", then "recovered".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from asyncua.common.subscription import Subscription

from agent.config.opcua import OpcuaDeviceConfig
from agent.errors import ConnectionLost, DeviceException, DeviceTimeout, SecurityError, SourceError
from agent.model import DeviceHealth, PollResult, Quality, Sample
from agent.sources.base import Emit
from agent.sources.opcua.plan import DevicePlan, PointPlan, compile_device
from agent.sources.opcua.session import OpcuaSession
from agent.sources.opcua.status import Reading, change_time, reading_of

log = logging.getLogger("agent.sources.opcua")
MAX_CHANGES_PER_POINT = 10_000  # data changes kept per point between two ticks (a stalled emit cannot grow memory)

RETRY_INITIAL_S = 0.5
RETRY_CAP_S = 2.0
SECURITY_RETRY_S = 30.0
SECURITY_RETRY_CAP_S = 300.0


class Backoff:
    """Exponential backoff: ``initial``, doubling, capped; ``reset`` after a success."""

    def __init__(self, initial_s: float, cap_s: float) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self._next = initial_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap_s)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s


def error_kind(exc: SourceError) -> str:
    if isinstance(exc, SecurityError):
        return "security"
    if isinstance(exc, DeviceTimeout):
        return "timeout"
    if isinstance(exc, DeviceException):
        return "protocol"
    return "connection"


def _short(exc: SourceError, device: str) -> str:
    text = str(exc)
    return text[len(device) + 2 :] if text.startswith(f"{device}: ") else text


class OpcuaSource:
    def __init__(
        self,
        config: OpcuaDeviceConfig,
        base_dir: Path = Path("."),
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        retry: Backoff | None = None,
        security_retry: Backoff | None = None,
        state_dir: Path | None = None,
        plan: DevicePlan | None = None,  # compiled by agent.runtime.compile; else compiled here
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.plan: DevicePlan = plan if plan is not None else compile_device(config, base_dir)
        self._fingerprint = hashlib.sha256(f"{config.model_dump_json()}|{base_dir.resolve()}".encode()).hexdigest()
        self._clock = clock
        self._monotonic = monotonic
        self._retry = retry or Backoff(RETRY_INITIAL_S, RETRY_CAP_S)
        self._security_retry = security_retry or Backoff(SECURITY_RETRY_S, SECURITY_RETRY_CAP_S)
        n = len(self.plan.points)
        self._latest: list[Reading | None] = [None] * n
        # subscribe mode: every data change received since the last tick, with the wall time it came (each one
        # becomes a sample exactly once), and the last sample time per point (sample times only move forward)
        self._changes: list[list[tuple[float, Reading]]] = [[] for _ in range(n)]
        self._last_ts: list[float] = [-math.inf] * n
        self.changes_dropped = 0  # changes beyond MAX_CHANGES_PER_POINT between two ticks (oldest dropped)
        self._session: OpcuaSession | None = None
        self._down_reason = "not connected yet"
        self._failed = False
        self._failed_since: float | None = None
        self._logged_point_errors: set[str] = set()
        self.connects = 0
        self.notifications = 0  # data-change notifications consumed (all sessions)
        self.attempts = 0
        self.connection_drops = 0  # sessions lost after they were up
        self._consecutive_failures = 0
        self._last_success_ts: float | None = None
        self._last_duration_s: float | None = None
        self._requests = 0
        self._requests_reported = 0
        self._errors: dict[str, int] = {}
        self._state_file: Path | None = None

    # --- Source protocol ----------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def devices(self) -> tuple[str, ...]:
        return (self.config.name,)

    def health(self) -> list[DeviceHealth]:
        state = "disabled" if not self.config.enabled else ("failed" if self._failed else "ok")
        return [
            DeviceHealth(
                device=self.config.name,
                state=state,
                last_success_ts=self._last_success_ts,
                consecutive_failures=self._consecutive_failures,
                last_poll_duration_s=self._last_duration_s,
                requests=self._requests + (self._session.requests if self._session else 0),
                errors_by_kind=dict(self._errors),
                retries=max(0, self.attempts - 1),  # the supervisor only tries again after a failure or a loss
                connection_drops=self.connection_drops,
            )
        ]

    async def run(self, emit: Emit) -> None:
        asyncua_logger = logging.getLogger("asyncua")
        if asyncua_logger.level == logging.NOTSET:  # we log each state change once; asyncua repeats them per attempt
            asyncua_logger.setLevel(logging.CRITICAL)
        if not self.config.enabled:
            await asyncio.Event().wait()  # a disabled device does nothing until cancelled
        with contextlib.ExitStack() as stack:
            # the session token survives a lost session (and, in state_dir, a crash) so its orphan gets closed
            folder = (
                self.state_dir / "opcua" if self.state_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            )
            self._state_file = folder / f"{self.plan.device}.session.json"
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._supervise())
                tg.create_task(self._tick(emit))

    # --- connection supervisor ----------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            self.attempts += 1
            kind = "connection"
            try:
                async with OpcuaSession(self.plan, self._state_file) as session:
                    sub = await session.subscribe() if self.plan.subscribe else None
                    self._up(session)
                    try:
                        async with asyncio.TaskGroup() as tg:
                            consumer = tg.create_task(self._consume(session, sub)) if sub is not None else None
                            await session.lost.wait()
                            if consumer is not None:
                                consumer.cancel()
                    finally:
                        self._requests += session.requests
                        self._latest = [None] * len(self._latest)
                        if session.lost.is_set():  # flag the gap now, before the (bounded) teardown
                            self.connection_drops += 1
                            self._down(session.lost_reason, kind)
                        self._session = None
            except SourceError as exc:
                kind = error_kind(exc)
                self._down(_short(exc, self.plan.device), kind)
            backoff = self._security_retry if kind == "security" else self._retry
            if kind != "security":
                self._security_retry.reset()
            await asyncio.sleep(backoff.next())

    async def _consume(self, session: OpcuaSession, sub: Subscription) -> None:
        points = self.plan.points
        try:
            async for index, dv in session.notifications(sub):
                self.notifications += 1
                if 0 <= index < len(points):
                    reading = reading_of(dv, points[index].value_range)
                    self._latest[index] = reading
                    queue = self._changes[index]
                    queue.append((self._clock(), reading))
                    if len(queue) > MAX_CHANGES_PER_POINT:
                        del queue[0]
                        self.changes_dropped += 1
        except Exception as exc:  # asyncua's failure is this session's end; a bug of ours propagates from fail()
            session.mark_lost(_short(session.fail(exc), self.plan.device))
            return
        session.mark_lost("subscription ended")

    def _up(self, session: OpcuaSession) -> None:
        self._session = session
        self.connects += 1
        self._retry.reset()
        self._security_retry.reset()
        self._consecutive_failures = 0
        if self._failed:
            down = self._monotonic() - (self._failed_since or self._monotonic())
            log.info("%s: recovered: connected to %s after %.1f s", self.plan.device, self.plan.endpoint, down)
        self._failed = False
        self._failed_since = None
        for error in session.point_errors.values():
            if error.message not in self._logged_point_errors:
                self._logged_point_errors.add(error.message)
                log.error("%s", error.message)

    def _down(self, reason: str, kind: str) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1
        self._consecutive_failures += 1
        self._down_reason = f"connection lost: {reason}" if self.connects else f"not connected: {reason}"
        if not self._failed:
            self._failed = True
            self._failed_since = self._monotonic()
            where = "" if self.plan.endpoint in reason else f"{self.plan.endpoint}: "
            log.warning("%s: failed: %s%s", self.plan.device, where, reason)

    # --- emission -----------------------------------------------------------------------------------------------

    async def _tick(self, emit: Emit) -> None:
        interval = self.plan.interval_s
        next_tick = self._monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_tick - self._monotonic()))
            started = self._monotonic()
            session = self._session
            errors: tuple[str, ...] = ()
            if session is not None:
                session.check_alive(started)
                if not self.plan.subscribe and not session.lost.is_set():
                    errors = await self._poll(session)
            result = self.build_result(self._clock(), errors)
            self._last_duration_s = self._monotonic() - started
            result = PollResult(
                result.device, result.ts, self._last_duration_s, result.samples, result.requests, result.errors
            )
            await emit(result)
            next_tick += interval
            now = self._monotonic()
            if next_tick < now:  # fell behind (slow emit): skip missed ticks, do not burst
                next_tick = now + interval

    async def _poll(self, session: OpcuaSession) -> tuple[str, ...]:
        try:
            values = await session.read_values()
        except SourceError as exc:
            if isinstance(exc, ConnectionLost | DeviceTimeout):
                session.mark_lost(_short(exc, self.plan.device))
            return (str(exc),)
        if self._session is not session:  # the session ended while the Read was out: its values are not current
            return ()
        points = self.plan.points
        for index, dv in values.items():
            self._latest[index] = reading_of(dv, points[index].value_range)
        return ()

    def _change_sample(self, i: int, point: PointPlan, change: Reading, received: float, now: float) -> Sample:
        self._last_ts[i] = ts = change_time(change, received, self._last_ts[i], now)
        source = change.source_ts if change.source_ts is not None else change.server_ts
        return Sample(
            self.plan.device,
            point.name,
            change.value,
            point.unit,
            change.quality,
            ts,
            change.reason,
            point.role,
            source,
        )

    def build_result(self, now: float, errors: tuple[str, ...] = ()) -> PollResult:
        """Every point once, from the current state: latest readings, point errors, or the connection gap."""
        session = self._session
        connected = session is not None and not session.lost.is_set()
        samples: list[Sample] = []
        point_errors = session.point_errors if session is not None else {}
        silence = session.publish_silence_s(self._monotonic()) if session is not None else None
        quiet = ""  # a subscription that missed its keep-alive: values are not vouched for until it speaks again
        if session is not None and silence is not None and silence > session.keepalive_s + self.plan.interval_s:
            quiet = f"no publish response for {silence:.1f} s"
        for i, point in enumerate(self.plan.points):
            reading = self._latest[i]
            changes, self._changes[i] = self._changes[i], []
            for received, change in changes:  # each data change once, in the order the server sent them
                samples.append(self._change_sample(i, point, change, received, now))
            if changes and connected and not quiet and i not in point_errors:
                continue  # the changes are this tick's samples of the point
            self._last_ts[i] = max(self._last_ts[i], now)
            if quiet and connected and i not in point_errors:
                samples.append(
                    Sample(self.plan.device, point.name, None, point.unit, Quality.STALE, now, quiet, point.role)
                )
                continue
            if not connected:
                lost = session is not None and session.lost.is_set()
                reason = f"connection lost: {session.lost_reason}" if lost and session else self._down_reason
                sample = Sample(self.plan.device, point.name, None, point.unit, Quality.BAD, now, reason, point.role)
            elif i in point_errors:
                sample = Sample(
                    self.plan.device,
                    point.name,
                    None,
                    point.unit,
                    Quality.BAD,
                    now,
                    point_errors[i].reason,
                    point.role,
                )
            elif reading is None:
                sample = Sample(
                    self.plan.device,
                    point.name,
                    None,
                    point.unit,
                    Quality.STALE,
                    now,
                    "no value since connect",
                    point.role,
                )
            else:
                sample = Sample(
                    self.plan.device,
                    point.name,
                    reading.value,
                    point.unit,
                    reading.quality,
                    now,
                    reading.reason,
                    point.role,
                    reading.source_ts if reading.source_ts is not None else reading.server_ts,
                )
            samples.append(sample)
        if connected:
            self._last_success_ts = now
        all_errors = (
            errors + tuple(dict.fromkeys(e.message for e in point_errors.values()))
            if connected
            else (f"{self.plan.device}: {samples[0].reason}",)
        )
        total = self._requests + (session.requests if session is not None else 0)
        requests, self._requests_reported = total - self._requests_reported, total
        return PollResult(self.plan.device, now, 0.0, tuple(samples), max(0, requests), all_errors)


async def read_once(source: OpcuaSource) -> PollResult:
    """Connect, read every point once (a polled Read, whatever the device's mode), disconnect: for ``probe``.

    Raises SourceError when the device cannot be reached, with the device name first.
    """
    started = source._monotonic()
    async with OpcuaSession(source.plan) as session:
        source._session = session
        try:
            values = await session.read_values()
            for index, dv in values.items():
                source._latest[index] = reading_of(dv, source.plan.points[index].value_range)
            result = source.build_result(source._clock())
        finally:
            source._session = None
    duration = source._monotonic() - started
    return PollResult(result.device, result.ts, duration, result.samples, result.requests, result.errors)
