# size: one connection and its one-request-in-flight state (TCP, RTU, and the raw exchange other protocols on the line use); split, the invariant would span modules
"""One Modbus connection (TCP socket or serial port) carrying one request at a time: our own thin client.

Why not pymodbus' async clients (3.16): checked against its source and issue tracker before writing this.
- RTU frames carry no transaction id. pymodbus matches an RTU reply by device id only, so a reply that comes after
  the timeout is handed to the *next* request to the same unit; its maintainers say this "can only be avoided with
  a sufficiently large timeout" (pymodbus-dev/pymodbus#2636). We must never attribute a late reply to the wrong
  request: here, after an RTU timeout that unit is *quarantined* for one more timeout: a reply from it in that time
  is discarded and counted, and the next request *to that unit* waits until its late reply came or the quarantine
  ended (requests to other units go on at once: a reply names its unit). Every RTU reply must also match unit,
  function and byte count of the request in flight. A reply later than twice the timeout cannot be told from the
  next reply of the same unit on RTU; that is the protocol's limit, not ours.
- Modbus TCP: pymodbus skips a reply with a foreign transaction id with an ERROR log line of its own (#2777) and
  accepts transaction id 0 for any request (#2844); we need the late replies *counted* (health), no log noise,
  and strict matching. It also has one timeout per client, where a TCP gateway needs one per device.
- Cost: performance.md measured ~140-160 µs of CPU per pymodbus request; a read here is a struct.pack, a write
  and a struct.unpack.
- Reconnects: pymodbus' async TCP client has a history of not reconnecting (#1635, #2619) and of busy loops with
  reconnect_delay=0 (#1794); here a read simply reconnects on demand and the poll backoff paces retries. (Also
  checked: 3.10+ renamed ``slave=`` to ``device_id=`` (#2600); moot here.)
So the same small core serves Modbus TCP, RTU-over-TCP (``framing="rtu"`` on a socket) and RTU on a serial port
(pyserial only opens and configures the port; reading goes through the event loop's ``add_reader``).

Other protocols on the same line: ``exchange(frame, cut, timeout)`` sends a frame built elsewhere and returns the
first reply ``cut`` takes from the received bytes (DL/T 645 meters sharing an RS-485 bus, a serial device server
or a DTU with Modbus RTU devices). It keeps the one-request-at-a-time rule and ``idle_since`` for the bus pause;
this module knows nothing of the other protocol.

Known limits: a Modbus TCP device that does not echo the transaction id gets every reply discarded (counted as
late) and times out; RS-485 adapters that echo our own request back are not supported (no local-echo filter).

Lifecycle: ``read`` connects on demand; a lost connection fails the request in flight, which is sent once more on a
new connection when the old one had been up (reads are idempotent), else raises ConnectionLost; the next ``read``
reconnects. ``stats.drops`` and ``stats.resends`` count both, each within the ``read`` that noticed it, so the
caller can put them on the device whose request it was. ``close`` releases the socket or port. Concurrency: one caller at a time (the source's own
task); a second concurrent ``read`` is a bug and raises RuntimeError. Errors raised: DeviceTimeout, DeviceException,
FrameError, ConnectionLost (agent.errors), each with a short reason used as the sample's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.errors import ConnectionLost, DeviceTimeout, FrameError, SourceError
from agent.sources.modbus import frames

Framing = Literal["tcp", "rtu"]
StreamOpener = Callable[
    [Callable[[bytes], None], Callable[[BaseException | None], None]],
    Awaitable[tuple[Callable[[bytes], None], Callable[[], None]]],
]


@dataclass(slots=True)
class LinkStats:
    """Counters of one link; read by the source for health."""

    requests: int = 0
    late_replies: int = 0  # complete replies that belonged to no request in flight (discarded)
    stray_bytes: int = 0  # bytes found in the receive buffer before a request was sent (discarded)
    connects: int = 0
    disconnects: int = 0
    drops: int = 0  # established connections lost (peer closed, failed write, unparseable stream), once noticed
    resends: int = 0  # requests sent again on a new connection because the old one dropped under them
    late_by_unit: dict[int, int] = field(default_factory=dict)  # late replies by the unit id they carry

    def late(self, unit: int) -> None:
        self.late_replies += 1
        self.late_by_unit[unit] = self.late_by_unit.get(unit, 0) + 1


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[bytes]
    tid: int
    unit: int
    function: int


class ModbusLink:
    """A Modbus master on one TCP connection or serial port. Build with ``tcp()`` or ``serial()``."""

    def __init__(self, endpoint: str, framing: Framing, opener: Callable[[ModbusLink], Any]) -> None:
        self.endpoint = endpoint
        self.framing = framing
        self.stats = LinkStats()
        self._opener = opener
        self._buffer = bytearray()
        self._pending: _Pending | None = None
        self._connected = False
        self._closer: Callable[[], None] | None = None
        self._writer: Callable[[bytes], None] | None = None
        self._tid = 0
        self._busy = False
        self._generation = 0  # which socket is current, so a stale socket's close event is ignored
        self._drop_unnoticed = False  # the connection was lost; the next (or current) request counts it
        self.idle_since = 0.0  # time.monotonic() when the last request finished (bus pause counts from here)
        self._quarantine: dict[int, tuple[float, asyncio.Future[None]]] = {}  # RTU unit -> (until, late reply seen)
        self._cut: Callable[[bytearray], bytes | None] | None = None  # set while an ``exchange`` waits

    @classmethod
    def tcp(cls, host: str, port: int, framing: Framing = "tcp") -> ModbusLink:
        return cls(f"{host}:{port}", framing, lambda link: link._open_tcp(host, port))

    @classmethod
    def serial(cls, port: str, baudrate: int, parity: str, stopbits: int, bytesize: int) -> ModbusLink:
        return cls(port, "rtu", lambda link: link._open_serial(port, baudrate, parity, stopbits, bytesize))

    @classmethod
    def over(cls, endpoint: str, framing: Framing, open_stream: StreamOpener) -> ModbusLink:
        """A link over a byte stream that exists elsewhere (a 4G DTU that dialled in to the agent):
        ``open_stream(on_data, on_lost)`` returns ``(write, close)`` or raises ConnectionLost."""

        async def opener(link: ModbusLink) -> None:
            link._generation += 1
            generation = link._generation

            def on_data(data: bytes) -> None:
                if generation == link._generation:
                    link._received(data)

            def on_lost(exc: BaseException | None) -> None:
                if generation == link._generation and link._connected:
                    link._lost(exc)

            link._writer, link._closer = await open_stream(on_data, on_lost)

        return cls(endpoint, framing, opener)

    @property
    def connected(self) -> bool:
        return self._connected

    # --- connection -------------------------------------------------------------------------------------------

    async def connect(self, timeout_s: float) -> None:
        if self._connected:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._opener(self)
        except TimeoutError:
            raise ConnectionLost(f"cannot connect within {timeout_s * 1000:.0f} ms") from None
        except socket.gaierror as exc:  # errno is an EAI_* code: os.strerror would say "Unknown error -2"
            host = self.endpoint.rsplit(":", 1)[0]
            raise ConnectionLost(f"cannot connect: the host name {host!r} does not resolve ({exc.strerror})") from None
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ConnectionLost(f"cannot connect: {why}") from None
        self._connected = True
        self._buffer.clear()
        self.stats.connects += 1

    async def _open_tcp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        transport, _ = await loop.create_connection(lambda: _SocketProtocol(self, generation), host, port)
        self._writer = transport.write
        self._closer = transport.close

    async def _open_serial(self, port: str, baudrate: int, parity: str, stopbits: int, bytesize: int) -> None:
        import serial  # pyserial, installed with pymodbus[serial]; configures the port (termios)

        handle = serial.Serial(
            port=port, baudrate=baudrate, parity=parity, stopbits=stopbits, bytesize=bytesize, timeout=0
        )
        fd: int = handle.fileno()
        os.set_blocking(fd, False)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(exc)
                return
            if data:
                self._received(data)

        def write(data: bytes) -> None:
            os.write(fd, data)

        def close() -> None:
            loop.remove_reader(fd)
            handle.close()

        loop.add_reader(fd, readable)
        self._writer = write
        self._closer = close

    async def close(self) -> None:
        self._drop()

    def _drop(self, lost: bool = False) -> None:
        if self._closer is not None:
            closer, self._closer = self._closer, None
            with contextlib.suppress(OSError):
                closer()
        if self._connected:
            self.stats.disconnects += 1
            self._drop_unnoticed = self._drop_unnoticed or lost
        self._connected = False
        self._writer = None
        self._generation += 1

    def _lost(self, exc: BaseException | None) -> None:
        reason = "connection lost" if exc is None else f"connection lost: {exc}"
        self._fail(ConnectionLost(reason))
        self._drop(lost=True)

    def _fail(self, exc: SourceError) -> None:
        pending = self._pending
        if pending is not None and not pending.future.done():
            pending.future.set_exception(exc)

    # --- requests ---------------------------------------------------------------------------------------------

    async def read(self, unit: int, function: int, start: int, count: int, timeout_s: float) -> bytes:
        """Read ``count`` registers (bits) from ``start``; returns the reply's data bytes (registers big-endian
        as on the wire, bits packed LSB first)."""
        if self._busy:
            raise RuntimeError(f"{self.endpoint}: concurrent requests on one Modbus link")
        self._busy = True
        self._notice_drop()  # lost while idle: counted by the request that finds it gone
        try:
            request = frames.read_pdu(function, start, count)
            for attempt in (0, 1):
                was_connected = self._connected
                if not was_connected:  # no coroutine for the usual case, an open connection
                    await self.connect(timeout_s)
                try:
                    pdu = await self._transact(unit, request, function, timeout_s)
                except ConnectionLost:
                    # the peer closed an established connection (e.g. a gateway recycling sockets): reads are
                    # idempotent, so reconnect and ask once more before calling the device unreachable
                    if attempt or not was_connected:
                        raise
                    self._notice_drop()
                    self.stats.resends += 1
                    continue
                return frames.check_reply(pdu, function, count)
            raise AssertionError("unreachable")
        finally:
            self._notice_drop()
            self._busy = False

    async def exchange(self, frame: bytes, cut: Callable[[bytearray], bytes | None], timeout_s: float) -> bytes:
        """Send ``frame`` (another protocol's request) and return the first reply ``cut`` takes off the received
        bytes; ``cut`` drops what it skips. Bytes already waiting are discarded first (counted as stray). Raises
        DeviceTimeout or ConnectionLost; reconnects on demand like ``read``."""
        if self._busy:
            raise RuntimeError(f"{self.endpoint}: concurrent requests on one link")
        self._busy = True
        self._notice_drop()
        try:
            await self.connect(timeout_s)
            if self._buffer:
                self.stats.stray_bytes += len(self._buffer)
                self._buffer.clear()
            loop = asyncio.get_running_loop()
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending = _Pending(future, 0, -1, -1)
            self._cut = cut
            assert self._writer is not None
            self.stats.requests += 1
            timer = loop.call_later(timeout_s, _expire, future, timeout_s)
            try:
                try:
                    self._writer(frame)
                except OSError as exc:
                    self._lost(exc)
                return await future
            finally:
                timer.cancel()
                self._pending = None
                self._cut = None
                self._buffer.clear()
                self.idle_since = time.monotonic()
        finally:
            self._notice_drop()
            self._busy = False

    def _notice_drop(self) -> None:
        if self._drop_unnoticed:
            self._drop_unnoticed = False
            self.stats.drops += 1

    async def _transact(self, unit: int, pdu: bytes, function: int, timeout_s: float) -> bytes:
        if self.framing == "rtu" and unit in self._quarantine:
            await self._wait_quarantine(unit)
        if self._buffer:
            self.stats.stray_bytes += len(self._buffer)
            self._buffer.clear()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if self.framing == "tcp":
            self._tid = self._tid % 0xFFFF + 1
            frame = frames.tcp_frame(self._tid, unit, pdu)
        else:
            frame = frames.rtu_frame(unit, pdu)
        self._pending = _Pending(future, self._tid, unit, function)
        assert self._writer is not None
        self.stats.requests += 1
        timer = loop.call_later(timeout_s, _expire, future, timeout_s)
        try:
            try:
                self._writer(frame)
            except OSError as exc:
                self._lost(exc)
            return await future
        except DeviceTimeout:
            if self.framing == "rtu":
                self._quarantine[unit] = (time.monotonic() + timeout_s, loop.create_future())
            raise
        finally:
            timer.cancel()
            self._pending = None
            self.idle_since = time.monotonic()

    async def _wait_quarantine(self, unit: int) -> None:
        """RTU: before asking a unit that timed out again, wait until its late reply came or one more timeout
        passed, so a late reply is never taken for the answer to this request."""
        until, seen = self._quarantine.pop(unit)
        wait = until - time.monotonic()
        if wait > 0 and not seen.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(seen), wait)
        if self._buffer:
            self.stats.stray_bytes += len(self._buffer)
            self._buffer.clear()

    # --- receiving --------------------------------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        self._buffer += data
        if self._cut is not None:
            pending = self._pending
            reply = self._cut(self._buffer)
            if reply is not None and pending is not None and not pending.future.done():
                pending.future.set_result(reply)
            return
        if self.framing == "tcp":
            self._received_tcp()
        else:
            self._received_rtu()

    def _received_tcp(self) -> None:
        while True:
            try:
                reply = frames.cut_tcp(self._buffer)
            except FrameError as exc:
                self._fail(exc)
                self._drop(lost=True)  # a TCP stream cannot be resynchronised after a garbage header
                return
            if reply is None:
                return
            pending = self._pending
            if pending is not None and reply.tid == pending.tid and not pending.future.done():
                if reply.unit != pending.unit:
                    pending.future.set_exception(FrameError(f"reply from unit {reply.unit}"))
                else:
                    pending.future.set_result(reply.pdu)
            else:
                self.stats.late(reply.unit)

    def _received_rtu(self) -> None:
        buffer = self._buffer
        while buffer:
            length = frames.rtu_reply_length(buffer)
            if length is None:
                return
            if length < 0:
                self._fail(FrameError("garbage on the line"))
                buffer.clear()
                return
            if len(buffer) < length:
                return
            frame = bytes(buffer[:length])
            del buffer[:length]
            pending = self._pending
            if not frames.check_rtu_crc(frame):
                if pending is not None:
                    self._fail(FrameError("CRC error"))
                buffer.clear()
                return
            if (
                pending is not None
                and not pending.future.done()
                and frame[0] == pending.unit
                and frame[1] & 0x7F == pending.function
            ):
                pending.future.set_result(frame[1:-2])
                continue
            self.stats.late(frame[0])
            quarantined = self._quarantine.get(frame[0])
            if quarantined is not None and not quarantined[1].done():
                quarantined[1].set_result(None)


def _expire(future: asyncio.Future[bytes], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(DeviceTimeout(f"timeout after {timeout_s * 1000:.0f} ms"))


class _SocketProtocol(asyncio.Protocol):
    def __init__(self, link: ModbusLink, generation: int) -> None:
        self._link = link
        self._generation = generation

    def data_received(self, data: bytes) -> None:
        if self._generation == self._link._generation:
            self._link._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._generation == self._link._generation and self._link._connected:
            self._link._lost(exc)
