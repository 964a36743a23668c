"""One device's poll: run its read plan over a link and turn every configured point into exactly one Sample.

Outcome per request:
- reply: each point decoded (good, uncertain when outside its range, bad "not a number");
- exception reply: its points bad with the exception's name; ILLEGAL DATA ADDRESS on a request of several points
  splits it (``plan.split_request``) and the parts are read at once; the split is kept for the device's lifetime.
  A single-point request that still answers ILLEGAL DATA ADDRESS marks the point bad with that reason every poll
  but is only sent again every ``RETRY_ILLEGAL_EVERY`` polls (the bad sample is still emitted on the others),
  so a firmware fix or a corrected map is noticed without hammering a bad address;
- timeout, connection lost, or gateway exceptions (0x0A, 0x0B): the device is unreachable; the remaining requests
  of this poll are not sent (a silent device costs its own timeout once per poll) and all their points are bad
  with the same reason;
- a malformed reply (wrong byte count, CRC, wrong function code): that request's points are bad, the rest go on.
A poll *fails* when no request got any reply. State changes are logged once: "<device>: failed: <reason> reading
<table a..b> (unit U, endpoint)" and "<device>: recovered after N failed polls".
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.config.site import ModbusDeviceConfig
from agent.errors import ConnectionLost, DeviceException, DeviceTimeout, FrameError, SourceError
from agent.model import DeviceHealth, GoodReads, PollResult, Quality, ReadLayout, Role, Sample, Value, new_sample
from agent.sources.modbus.link import ModbusLink
from agent.sources.modbus.plan import ReadPlan, ReadRequest, split_request
from agent.sources.modbus.replies import ReplyDecoder

log = logging.getLogger("agent.sources.modbus")

RETRY_ILLEGAL_EVERY = 10
ILLEGAL_DATA_ADDRESS = 2
_UNREACHABLE_CODES = frozenset({0x0A, 0x0B})  # the gateway says the device behind it did not answer


@dataclass(slots=True)
class _Slot:
    """A request of the plan and what we learned about it."""

    request: ReadRequest
    illegal: bool = False  # a single point answering ILLEGAL DATA ADDRESS
    skip: int = 0  # polls left before the illegal point is tried again


Wait = Callable[[], Awaitable[None]] | None  # None: nothing to wait for before a request (no bus pause)


@dataclass(slots=True)
class _PollState:
    """What one poll has gathered so far."""

    ts: float  # poll start (wall clock)
    queue: list[_Slot]  # requests still to run (splits are pushed to the front)
    kept: list[_Slot] = field(default_factory=list)  # the device's requests after this poll
    samples: dict[str, Sample] = field(default_factory=dict)
    good: list[tuple[ReadRequest, bytes, tuple[Value, ...], float]] = field(default_factory=list)  # all points good
    errors: list[str] = field(default_factory=list)
    unreachable: str | None = None  # set by a timeout / lost connection / gateway exception: skip the rest
    answered: bool = False  # some request got a reply (data or exception)
    sent: int = 0
    illegal: list[str] = field(default_factory=list)  # points that turned ILLEGAL DATA ADDRESS in this poll
    readable: list[str] = field(default_factory=list)  # illegal points that answered again in this poll


def _some(names: list[str], shown: int = 5) -> str:
    """``a, b, c and 7 more points`` (or ``point a``)."""
    if len(names) == 1:
        return f"point {names[0]}"
    head = ", ".join(names[:shown])
    return f"{len(names)} points: {head}" + (f" and {len(names) - shown} more" if len(names) > shown else "")


class DevicePoller:
    """Polls one device. Not thread-safe; used by the one task of its source."""

    def __init__(
        self,
        device: ModbusDeviceConfig,
        plan: ReadPlan,
        endpoint: str,
        now: Callable[[], float],
        failure_threshold: int = 3,
        phase_s: float = 0.0,
    ) -> None:
        self.config = device
        self.name = device.name
        self.plan = plan
        self.endpoint = endpoint
        self.interval_s = device.interval_s
        self.phase_s = phase_s  # offset of this device's slots within the interval (schedule.device_phase_s)
        self.timeout_s = device.timeout_ms / 1000.0
        self._now = now
        self.failure_threshold = failure_threshold  # consecutive failed polls before health says "failed"
        self._slots = [_Slot(r) for r in plan.requests]
        self._meta: dict[str, tuple[str, Role | None]] = {}
        for request in plan.requests:
            for p in request.points:
                self._meta[p.name] = (p.config.unit, p.config.role)
        self._replies = ReplyDecoder(self.name, self._meta, len(plan.requests))
        self.consecutive_failures = 0
        self.last_success_ts: float | None = None
        self.last_duration_s: float | None = None
        self.requests = 0
        self.retries = 0  # requests sent again: after a timeout (``retries``) or on a new connection after a drop
        self.connection_drops = 0  # connections found lost by this device's requests (dropped mid-request or idle)
        self.errors_by_kind: dict[str, int] = {}
        self.raw: dict[str, bytes] = {}  # last raw bytes per point, kept only when capture_raw is set
        self.capture_raw = False
        self.last_failure = ""  # the reason of the last failed poll (its first point's), for backing-off slots
        self.last_answered = False  # the device replied (data or an exception) in its last poll that sent requests
        self._layout: tuple[tuple[ReadRequest, ...], ReadLayout] | None = None  # for polls that read all good

    @property
    def slots(self) -> list[ReadRequest]:
        return [s.request for s in self._slots]

    def count(self, kind: str, n: int = 1) -> None:
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + n

    def health(self) -> DeviceHealth:
        state = (
            "disabled"
            if not self.config.enabled
            else ("failed" if self.consecutive_failures >= self.failure_threshold else "ok")
        )
        return DeviceHealth(
            self.name,
            state,
            self.last_success_ts,
            self.consecutive_failures,
            self.last_duration_s,
            self.requests,
            dict(self.errors_by_kind),
            self.retries,
            self.connection_drops,
        )

    def _where(self, request: ReadRequest) -> str:
        return f"reading {request.describe()} (unit {self.config.unit_id}, {self.endpoint})"

    async def poll(self, link: ModbusLink, before_request: Wait) -> PollResult:
        """One poll over ``link``; ``before_request`` is awaited before every request (bus pause)."""
        started = time.perf_counter()
        st = _PollState(self._now(), list(self._slots))
        while st.queue:
            slot = st.queue.pop(0)
            request = slot.request
            st.kept.append(slot)
            if st.unreachable is not None:
                self._bad(st.samples, request, st.unreachable, st.ts)
                continue
            if slot.illegal and slot.skip > 0:
                slot.skip -= 1
                self._bad(st.samples, request, "ILLEGAL DATA ADDRESS", st.ts)
                continue
            if before_request is not None:
                await before_request()
            st.sent += 1
            try:
                data = await self._read(link, request)
            except DeviceException as exc:
                self._exception_reply(st, slot, exc)
                continue
            except (DeviceTimeout, ConnectionLost, FrameError) as exc:
                self._no_reply(st, request, exc)
                continue
            st.answered = True
            if slot.illegal:
                slot.illegal = False
                st.readable.append(request.points[0].name)
            values = None if self.capture_raw else self._replies.good_values(request, data)
            if values is not None:
                st.good.append((request, data, values, self._now()))
            else:
                self._decode(st.samples, request, data, self._now())
        self._slots = st.kept
        self.requests += st.sent
        duration = time.perf_counter() - started
        self.last_duration_s = duration
        reads: tuple[Sample, ...] | GoodReads
        if st.good and not st.samples:  # every request read all its points good: columns, no Sample per point
            good = st.good
            values = good[0][2] if len(good) == 1 else tuple(v for g in good for v in g[2])
            reads = GoodReads(self._layout_of(good), values, tuple(g[3] for g in good))
        else:
            for request, data, _, ts in st.good:
                self._decode(st.samples, request, data, ts)
            st.good.clear()
            reads = tuple(st.samples[name] for name in self.plan.point_names)
        self._account(st)
        return PollResult(self.name, st.ts, duration, reads, st.sent, tuple(st.errors))

    def _layout_of(self, good: list[tuple[ReadRequest, bytes, tuple[Value, ...], float]]) -> ReadLayout:
        """The columns of these requests (cached while the device's requests stay the same objects)."""
        requests = tuple(g[0] for g in good)
        cached = self._layout
        if cached is not None and len(cached[0]) == len(requests) and all(map(operator.is_, cached[0], requests)):
            return cached[1]
        points: list[str] = []
        request_of: list[int] = []
        for k, request in enumerate(requests):
            points += [p.name for p in request.points]
            request_of += [k] * len(request.points)
        index = {name: i for i, name in enumerate(points)}
        layout = ReadLayout(
            self.name,
            tuple(points),
            tuple(self._meta[n][0] for n in points),
            tuple(self._meta[n][1] for n in points),
            tuple(index[n] for n in self.plan.point_names),
            tuple(request_of),
        )
        self._layout = (requests, layout)
        return layout

    def _exception_reply(self, st: _PollState, slot: _Slot, exc: DeviceException) -> None:
        request = slot.request
        self.count(exc.code_name)
        if exc.code in _UNREACHABLE_CODES:  # the gateway answered for a device that did not
            st.unreachable = exc.code_name
        else:
            st.answered = True
        if exc.code == ILLEGAL_DATA_ADDRESS and len(request.points) > 1:
            parts = split_request(request)
            st.kept.pop()
            st.queue[:0] = [_Slot(p) for p in parts]
            self.count("split")
            log.debug(
                "%s: ILLEGAL DATA ADDRESS %s: split into %d requests", self.name, self._where(request), len(parts)
            )
            return
        if exc.code == ILLEGAL_DATA_ADDRESS:
            if not slot.illegal:
                st.illegal.append(request.points[0].name)
            slot.illegal, slot.skip = True, RETRY_ILLEGAL_EVERY - 1
        st.errors.append(f"{exc.code_name} {self._where(request)}")
        self._bad(st.samples, request, exc.code_name, self._now())

    def _no_reply(self, st: _PollState, request: ReadRequest, exc: SourceError) -> None:
        """Timeout or lost connection: the device is unreachable for the rest of this poll. A malformed reply
        spoils only its own request."""
        if isinstance(exc, FrameError):
            self.count("frame")
        else:
            self.count("timeout" if isinstance(exc, DeviceTimeout) else "connection")
            st.unreachable = str(exc)
        st.errors.append(f"{exc} {self._where(request)}")
        self._bad(st.samples, request, str(exc), self._now())

    async def _read(self, link: ModbusLink, request: ReadRequest) -> bytes:
        retries = self.config.retries
        while True:
            drops, resends = link.stats.drops, link.stats.resends
            try:
                return await link.read(
                    self.config.unit_id, request.function, request.start, request.count, self.timeout_s
                )
            except DeviceTimeout:
                if retries <= 0:
                    raise
                retries -= 1
                self.retries += 1
            finally:  # one request at a time on the link: what it counted during this read was ours
                self.connection_drops += link.stats.drops - drops
                self.retries += link.stats.resends - resends

    def _account(self, st: _PollState) -> None:
        """Success when some point has a value; a poll whose points are all bad is a failure even if the device
        answered (a wrong unit_id answering ILLEGAL DATA ADDRESS everywhere). Logged once per state change: one
        line for the failure, one for the recovery, one per poll for the points that changed in between."""
        if st.sent:
            self.last_answered = st.answered
        usable = st.answered and (bool(st.good) or any(s.quality is not Quality.BAD for s in st.samples.values()))
        if usable:
            if self.consecutive_failures:
                log.warning("%s: recovered after %d failed polls", self.name, self.consecutive_failures)
            self.consecutive_failures = 0
            self.last_success_ts = st.ts
            if st.illegal:
                log.warning(
                    "%s: ILLEGAL DATA ADDRESS at %s (unit %d, %s); the other points are read",
                    self.name,
                    _some(st.illegal),
                    self.config.unit_id,
                    self.endpoint,
                )
            if st.readable:
                log.warning("%s: readable again: %s", self.name, _some(st.readable))
        elif st.sent or st.samples:  # nothing sent: every request skipped as ILLEGAL DATA ADDRESS, still failing
            if self.consecutive_failures == 0:
                log.warning("%s: failed: %s", self.name, self._failure(st))
            self.consecutive_failures += 1
            self.last_failure = st.unreachable or next((s.reason for s in st.samples.values() if s.reason), "no reply")

    def _failure(self, st: _PollState) -> str:
        reasons = {s.reason for s in st.samples.values()}
        if st.answered and reasons == {"ILLEGAL DATA ADDRESS"}:
            return (
                f"every point answered ILLEGAL DATA ADDRESS (unit {self.config.unit_id}, {self.endpoint}): check "
                "unit_id (another device may answer at it) and that the profile matches this device"
            )
        return st.errors[0] if st.errors else "no reply"

    def backing_off(self, ts: float) -> PollResult:
        """The result of a slot that backoff leaves out: every point bad, "backing off: <last failure>"."""
        reason = f"backing off: {self.last_failure}"
        samples = []
        for name in self.plan.point_names:
            unit, role = self._meta[name]
            samples.append(new_sample(self.name, name, None, unit, Quality.BAD, ts, reason, role))
        return PollResult(self.name, ts, 0.0, tuple(samples), 0, (reason,))

    def _bad(self, samples: dict[str, Sample], request: ReadRequest, reason: str, ts: float) -> None:
        name = self.name
        for p in request.points:
            unit, role = self._meta[p.name]
            samples[p.name] = new_sample(name, p.name, None, unit, Quality.BAD, ts, reason, role)

    def _decode(self, samples: dict[str, Sample], request: ReadRequest, data: bytes, ts: float) -> None:
        self._replies.decode(samples, request, data, ts)
        if self.capture_raw:
            for p in request.points:
                if request.is_bits:
                    self.raw[p.name] = bytes([(data[p.offset >> 3] >> (p.offset & 7)) & 1])
                else:
                    self.raw[p.name] = data[p.offset * 2 : (p.offset + p.codec.width) * 2]
