"""The dial-in listener: 4G DTUs connect to the agent, announce themselves, and carry a serial bus over that socket.

A connection is *unregistered* until its first bytes are one of the configured registration packets (a DTU's ID
string or IMEI, ``DtuBusConfig.registration``); then it belongs to that DTU's bus, and the bus's link
(``open_stream``) reads and writes through it. Heartbeat packets (and the registration packet repeated, as some
DTUs do) arriving as their own chunk are dropped from the stream; the DL/T 645 cutter also resyncs on ``68`` if one
arrives glued to a reply.

Refused and closed, each logged once with the peer's address: a connection that sends no known registration within
``registration_timeout_s`` (unknown or silent), a second connection claiming a DTU that already has a live one, and
a registered connection silent for ``idle_timeout_s``. A DTU that reconnects after its old socket died is taken
as soon as the old one is noticed closed.

Lifecycle: ``run()`` listens until cancelled (the runtime runs it as a source without devices); ``open_stream`` is
the opener of a DTU bus's link and raises ConnectionLost while the DTU has not dialled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from agent.config.dtu import DtuBusConfig, DtuListenerConfig
from agent.errors import ConnectionLost
from agent.model import DeviceHealth
from agent.sources.base import Emit

log = logging.getLogger("agent.sources.dtu")

OnData = Callable[[bytes], None]
OnLost = Callable[[BaseException | None], None]
Write = Callable[[bytes], None]
Close = Callable[[], None]


@dataclass(frozen=True, slots=True)
class DtuId:
    bus: str
    registration: bytes
    heartbeat: bytes | None


class _Connection(asyncio.Protocol):
    def __init__(self, listener: DtuListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.dtu: DtuId | None = None
        self.head = bytearray()
        self.on_data: OnData | None = None
        self.on_lost: OnLost | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._arm(self.listener.config.registration_timeout_s, "sent no known registration packet")

    def _arm(self, delay: float, why: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(delay, self._expire, why)

    def _expire(self, why: str) -> None:
        who = f"DTU {self.dtu.bus}" if self.dtu else "connection"
        log.warning("%s from %s %s within the timeout; closed", who, self.peer, why)
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.dtu is None:
            self.head += data
            self._register()
            return
        self._arm(self.listener.config.idle_timeout_s, "was silent")
        if data in (self.dtu.heartbeat, self.dtu.registration):
            self.listener.heartbeats += 1
            return
        if self.on_data is not None:
            self.on_data(data)

    def _register(self) -> None:
        for dtu in self.listener.dtus:
            if not self.head.startswith(dtu.registration):
                continue
            if self.listener.live.get(dtu.bus) is not None:
                log.warning(
                    "DTU %s: a second connection from %s claims its registration while one is live; refused",
                    dtu.bus,
                    self.peer,
                )
                self.listener.refused += 1
                self.close()
                return
            self.dtu = dtu
            self.listener.live[dtu.bus] = self
            log.info("DTU %s: registered from %s", dtu.bus, self.peer)
            self._arm(self.listener.config.idle_timeout_s, "was silent")
            rest = bytes(self.head[len(dtu.registration) :])
            self.head.clear()
            if rest and rest != dtu.heartbeat and self.on_data is not None:
                self.on_data(rest)
            return
        longest = max((len(d.registration) for d in self.listener.dtus), default=0)
        if len(self.head) >= longest and not any(d.registration.startswith(self.head) for d in self.listener.dtus):
            shown = bytes(self.head[:longest]).hex(" ")
            log.warning("connection from %s: unknown registration packet %s; closed", self.peer, shown)
            self.listener.refused += 1
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.dtu is not None and self.listener.live.get(self.dtu.bus) is self:
            del self.listener.live[self.dtu.bus]
            log.warning("DTU %s: connection from %s closed", self.dtu.bus, self.peer)
            if self.on_lost is not None:
                self.on_lost(exc)


class DtuListener:
    """Listens for DTUs; one per site (``dtu_listener``). Build with ``from_site``."""

    def __init__(self, config: DtuListenerConfig, dtus: list[DtuId]) -> None:
        self.config = config
        self.dtus = dtus
        self.live: dict[str, _Connection] = {}
        self.refused = 0
        self.heartbeats = 0
        self.port: int | None = None  # the bound port once listening (config.port 0: any free port, for tests)
        self.listening = asyncio.Event()
        digest = hashlib.sha256(config.model_dump_json().encode())
        for d in dtus:
            digest.update(repr(d).encode())
        self._fingerprint = digest.hexdigest()[:16]

    @classmethod
    def from_buses(cls, config: DtuListenerConfig, buses: Mapping[str, DtuBusConfig]) -> DtuListener:
        return cls(config, [DtuId(n, b.registration_bytes, b.heartbeat_bytes) for n, b in buses.items()])

    @property
    def name(self) -> str:
        return "dtu-listener"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def devices(self) -> tuple[str, ...]:
        return ()

    def health(self) -> list[DeviceHealth]:
        return []

    async def run(self, emit: Emit | None = None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), self.config.host, self.config.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("listening for DTUs on %s:%d", self.config.host, self.port)
        self.listening.set()
        try:
            await asyncio.Future()  # until cancelled
        finally:
            server.close()
            for conn in list(self.live.values()):
                conn.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def open_stream(self, bus: str, on_data: OnData, on_lost: OnLost) -> tuple[Write, Close]:
        conn = self.live.get(bus)
        if conn is None or conn.transport is None or conn.transport.is_closing():
            raise ConnectionLost(f"DTU {bus} has not dialled in")
        conn.on_data, conn.on_lost = on_data, on_lost
        transport = conn.transport

        def close() -> None:  # the link lets go; the DTU's socket stays up for the next request
            conn.on_data = conn.on_lost = None

        return transport.write, close
