"""One DL/T 645 meter's poll: one read request per data identifier, each configured point exactly one Sample.

Outcome per request:
- normal reply (0x91 / 1997 0x81), with follow-up frames fetched by 0x12 while the reply says more follows: the
  identifier's points decoded (good; uncertain outside their range; bad with the reason on an invalid BCD nibble,
  a wrong length, an identifier or address that is not the one asked for);
- abnormal reply (0xD1 / 1997 0xC1): the points bad with the error bits by name ("no such data item"); such an
  identifier is then only asked again every ``RETRY_UNSUPPORTED_EVERY`` polls (bad samples in between);
- timeout or lost connection: the meter is unreachable for the rest of the poll (its remaining points bad with the
  same reason, no more requests): a silent meter costs its own timeout once per poll, and the scheduler backs off.

The poller has the same surface as ``agent.sources.modbus.device.DevicePoller`` (``poll(link, before_request)``,
``health()``, ``backing_off()``), so a bus source polls Modbus and DL/T 645 devices in one queue. ``link`` is any
object with ``exchange(frame, cut, timeout_s)`` (``RawLink``): the Modbus link of the bus in practice.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from agent.config.dlt645 import Dlt645DeviceConfig, ResolvedPoint, Version, di_bytes
from agent.errors import ConnectionLost, DeviceTimeout, SourceError
from agent.model import DeviceHealth, PollResult, Quality, Sample
from agent.sources.dlt645 import frame as fr
from agent.sources.dlt645.values import decode_field

log = logging.getLogger("agent.sources.dlt645")

RETRY_UNSUPPORTED_EVERY = 10
MAX_FOLLOW_UPS = 8

Wait = Callable[[], Awaitable[None]] | None  # None: nothing to wait for before a request (no bus pause)


class RawLink(Protocol):
    async def exchange(self, frame: bytes, cut: Callable[[bytearray], bytes | None], timeout_s: float) -> bytes: ...


@dataclass(slots=True)
class Request:
    """One data identifier and the points decoded from its reply."""

    di: str
    raw_di: bytes
    points: tuple[ResolvedPoint, ...]
    unsupported: bool = False
    skip: int = 0


@dataclass(slots=True)
class _Poll:
    ts: float
    samples: dict[str, Sample] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    unreachable: str | None = None
    answered: bool = False
    sent: int = 0


class ReplyError(SourceError):
    """A reply that is not an answer to the request (wrong address, identifier or control code)."""


def build_requests(points: Sequence[ResolvedPoint], version: Version) -> list[Request]:
    """Points that read the same identifier share its request (e.g. a max demand and its time)."""
    by_di: dict[str, list[ResolvedPoint]] = {}
    for p in points:
        by_di.setdefault(p.di, []).append(p)
    return [Request(di, di_bytes(di, version), tuple(ps)) for di, ps in by_di.items()]


class Dlt645Poller:
    """Polls one meter. Not thread-safe; used by the one task of its bus source."""

    def __init__(
        self,
        device: Dlt645DeviceConfig,
        version: Version,
        endpoint: str,
        now: Callable[[], float],
        tz: ZoneInfo,
        failure_threshold: int = 3,
    ) -> None:
        self.config = device
        self.name = device.name
        self.version = version
        self.endpoint = endpoint
        self.interval_s = device.interval_s
        self.phase_s = 0.0  # slots aligned to the interval unless the site spreads them (build_modbus_sources)
        self.timeout_s = device.timeout_ms / 1000.0
        self.failure_threshold = failure_threshold
        self._now = now
        self._tz = tz
        self.requests_plan = build_requests(device.points, version)
        self.point_names = tuple(p.name for p in device.points)
        self._units = {p.name: p for p in device.points}
        self.consecutive_failures = 0
        self.last_success_ts: float | None = None
        self.last_duration_s: float | None = None
        self.requests = 0
        self.retries = 0
        self.errors_by_kind: dict[str, int] = {}
        self.last_failure = ""
        self.control_codes_sent: set[int] = set()  # every control code this poller put on the line

    def count(self, kind: str, n: int = 1) -> None:
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + n

    def health(self) -> DeviceHealth:
        failed = self.consecutive_failures >= self.failure_threshold
        state = "disabled" if not self.config.enabled else ("failed" if failed else "ok")
        return DeviceHealth(
            self.name,
            state,
            self.last_success_ts,
            self.consecutive_failures,
            self.last_duration_s,
            self.requests,
            dict(self.errors_by_kind),
            self.retries,
            0,
        )

    async def poll(self, link: RawLink, before_request: Wait) -> PollResult:
        started = time.perf_counter()
        st = _Poll(self._now())
        for request in self.requests_plan:
            if st.unreachable is not None:
                self._bad(st, request, st.unreachable)
                continue
            if request.unsupported and request.skip > 0:
                request.skip -= 1
                self._bad(st, request, "no such data item")
                continue
            try:
                data = await self._read(link, request, before_request, st)
            except (DeviceTimeout, ConnectionLost) as exc:
                self.count("timeout" if isinstance(exc, DeviceTimeout) else "connection")
                st.unreachable = str(exc)
                st.errors.append(f"{exc} reading {request.di} (address {self.config.address}, {self.endpoint})")
                self._bad(st, request, str(exc))
                continue
            except SourceError as exc:
                self.count("frame" if isinstance(exc, ReplyError) else "error_reply")
                st.errors.append(f"{exc} reading {request.di} (address {self.config.address})")
                self._bad(st, request, str(exc))
                continue
            self._decode(st, request, data)
        self.requests += st.sent
        self.last_duration_s = time.perf_counter() - started
        self._account(st)
        samples = tuple(st.samples[n] for n in self.point_names)
        return PollResult(self.name, st.ts, self.last_duration_s, samples, st.sent, tuple(st.errors))

    async def _send(self, link: RawLink, request_frame: bytes, before_request: Wait, st: _Poll) -> fr.Frame:
        retries = self.config.retries
        while True:
            if before_request is not None:
                await before_request()
            st.sent += 1
            self.control_codes_sent.add(request_frame[request_frame.index(fr.START) + 8])
            stats = fr.CutStats()
            try:
                raw = await link.exchange(request_frame, functools.partial(fr.cut, stats=stats), self.timeout_s)
            except DeviceTimeout as exc:
                if stats.skipped or stats.bad_frames:
                    self.count("garbled")
                    exc = DeviceTimeout(f"{exc} (garbled bytes received)")
                if retries <= 0:
                    raise exc from None
                retries -= 1
                self.retries += 1
                continue
            st.answered = True
            reply = fr.parse(raw)
            expected = fr.address_bytes(self.config.address)
            if reply.address != expected:
                raise ReplyError(f"reply from address {fr.address_text(reply.address)}, not {self.config.address}")
            return reply

    async def _read(self, link: RawLink, request: Request, before_request: Wait, st: _Poll) -> bytes:
        """The value bytes of ``request``'s identifier (follow-up frames joined)."""
        address, preamble = self.config.address, self.config.preamble
        sent = fr.read_request(address, request.raw_di, preamble)
        reply = await self._send(link, sent, before_request, st)
        value = self._check(reply, sent[sent.index(fr.START) + 8], request)
        if reply.has_follow and self.version == "1997":
            # a 1997 follow-up needs control code 0x02, which this agent does not send (reads 0x01 only)
            raise ReplyError("the reply continues in a follow-up frame, which DL/T 645-1997 reads do not fetch")
        seq = 0
        while reply.has_follow and seq < MAX_FOLLOW_UPS:
            seq += 1
            sent = fr.read_follow_request(address, request.raw_di, seq, preamble)
            reply = await self._send(link, sent, before_request, st)
            part = self._check(reply, fr.READ_FOLLOW_2007, request)
            value += part[:-1]  # a follow-up reply ends with its sequence number
        if request.unsupported:
            request.unsupported = False
            log.warning("%s: data item %s readable again", self.name, request.di)
        return value

    def _check(self, reply: fr.Frame, control: int, request: Request) -> bytes:
        if reply.control & 0x1F != control & 0x1F or not reply.is_reply:
            raise ReplyError(f"reply with control code 0x{reply.control:02X} to request 0x{control:02X}")
        if reply.is_error:
            code = reply.data[0] if reply.data else 0
            names = fr.error_names(code, self.version)
            if code & 0x02:  # no such data item: ask again only now and then
                if not request.unsupported:
                    log.warning("%s: data item %s: %s", self.name, request.di, names)
                request.unsupported, request.skip = True, RETRY_UNSUPPORTED_EVERY - 1
            raise SourceError(names)
        n = len(request.raw_di)
        if reply.data[:n] != request.raw_di:
            got = reply.data[:n][::-1].hex().upper()
            raise ReplyError(f"reply for data item {got}, not {request.di}")
        return reply.data[n:]

    def _decode(self, st: _Poll, request: Request, data: bytes) -> None:
        ts = self._now()
        fmt = request.points[0].format
        if len(data) != fmt.size:
            self._bad(st, request, f"wrong length: {len(data)} bytes for {fmt.text} ({fmt.size})", ts)
            return
        for p in request.points:
            offset = sum(f.size for f in p.format.fields[: p.element])
            f = p.format.fields[p.element]
            value, reason = decode_field(data[offset : offset + f.size], f, p.signed, self._tz)
            if value is None:
                st.samples[p.name] = Sample(self.name, p.name, None, p.unit, Quality.BAD, ts, reason or "", p.role)
                continue
            if f.kind == "number":
                value *= p.factor
            quality, why = Quality.GOOD, ""
            if p.range is not None and not p.range[0] <= value <= p.range[1]:
                quality, why = Quality.UNCERTAIN, f"out of range: {value:g} not in [{p.range[0]:g}, {p.range[1]:g}]"
            st.samples[p.name] = Sample(self.name, p.name, value, p.unit, quality, ts, why, p.role)

    def _bad(self, st: _Poll, request: Request, reason: str, ts: float | None = None) -> None:
        at = st.ts if ts is None else ts
        for p in request.points:
            st.samples[p.name] = Sample(self.name, p.name, None, p.unit, Quality.BAD, at, reason, p.role)

    def _account(self, st: _Poll) -> None:
        if st.answered:
            if self.consecutive_failures:
                log.warning("%s: recovered after %d failed polls", self.name, self.consecutive_failures)
            self.consecutive_failures = 0
            self.last_success_ts = st.ts
        elif st.sent:
            if self.consecutive_failures == 0:
                log.warning("%s: failed: %s", self.name, st.errors[0] if st.errors else "no reply")
            self.consecutive_failures += 1
            self.last_failure = st.unreachable or "no reply"

    def backing_off(self, ts: float) -> PollResult:
        reason = f"backing off: {self.last_failure}"
        samples = tuple(
            Sample(self.name, p.name, None, p.unit, Quality.BAD, ts, reason, p.role) for p in self.config.points
        )
        return PollResult(self.name, ts, 0.0, samples, 0, (reason,))


async def read_address(link: RawLink, timeout_s: float) -> str:
    """Ask the one meter on a point-to-point link for its address (0x13 to AA..AA); its 12 digits."""
    reply = fr.parse(await link.exchange(fr.read_address_request(), fr.cut, timeout_s))
    if reply.control != 0x93 or len(reply.data) < 6:
        raise ReplyError(f"unexpected reply 0x{reply.control:02X} to read address")
    return fr.address_text(reply.data[:6])
