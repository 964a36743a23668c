"""DL/T 645 meters of the simulated plant, on one line: a TCP server (a serial device server in front of RS-485),
a TCP *client* that dials in like a 4G DTU (registration packet first, heartbeats), or a serial port on a pty pair
made by socat. Optionally Modbus RTU units share the line (``modbus``: a ``ModbusSimulator`` whose registers
answer RTU frames here), as on a mixed switch-room bus.

Values come from ``PlantModel`` (advanced to ``clock()`` at each request) and are shown on the meter's secondary
side: primary / (CT x PT) for energy and power, / CT for current, / PT for voltage, encoded as the catalogue says
(``agent/data/dlt645_*.yaml``); energy counters wrap at their digit count like a real register.

Faults per meter (``SimMeter``): the FE count of each reply cycles through ``fe``; ``delay_s`` slows replies;
``garbage_every`` puts noise and a broken frame before every Nth reply; ``error_every`` answers every Nth request
with "other error"; ``unsupported`` identifiers get "no such data item"; ``version`` 1997 meters ignore 2007
frames (a 1997 meter addressed as 2007 stays silent, as they do). ``wire_baud`` delays each reply by the time both
frames take on a line of that speed (8E1) plus the meter's 20 ms turnaround, so cycle times match a real bus.

Read-only check: every control code received is counted in ``controls`` and in ``simulators.registry`` (the
suite fails at the end on any code but 0x11, 0x12, 0x13 and 0x01).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from agent.config.dlt645 import CatalogueItem, Version, catalogue, normalise_di, parse_format
from agent.sources.dlt645 import frame as fr
from agent.sources.dlt645.values import encode_date, encode_number
from agent.sources.modbus import frames as mb
from simulators import registry
from simulators.dlt645_plant import plant_value
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel

TURNAROUND_S = 0.020


@dataclass(frozen=True, slots=True)
class SimMeter:
    device: str  # a plant device with electric values (main-meter, kiln1-meter, ...)
    address: str
    version: Version = "2007"
    ct_ratio: float = 1.0
    pt_ratio: float = 1.0
    unsupported: frozenset[str] = frozenset()  # identifiers (as in the catalogue) answered "no such data item"
    fe: tuple[int, ...] = (4,)
    delay_s: float = 0.0
    garbage_every: int = 0
    error_every: int = 0


class Dlt645Simulator:
    """Serves ``meters`` (and ``modbus`` units) of ``model`` on one line. ``controls`` counts control codes."""

    def __init__(
        self,
        model: PlantModel,
        meters: Sequence[SimMeter],
        *,
        clock: Callable[[], float] = time.time,
        tz: str = "Asia/Shanghai",
        modbus: ModbusSimulator | None = None,
        wire_baud: int | None = None,
    ) -> None:
        self.model = model
        self.meters = {m.address: m for m in meters}
        self.clock = clock
        self.tz = ZoneInfo(tz)
        self.modbus = modbus
        self.wire_baud = wire_baud
        self.controls: Counter[int] = Counter()
        self.modbus_requests = 0
        self.requests: Counter[str] = Counter()  # by meter address
        self.pty_path: str | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._socat: subprocess.Popen[bytes] | None = None
        self._ptydir: str | None = None
        self._fd: int | None = None

    # --- answering ------------------------------------------------------------------------------------------------

    def answer(self, request: bytes) -> bytes | None:
        """The reply bytes to one request frame (from its first 68), or None for silence."""
        frame = fr.parse(request)
        self.controls[frame.control] += 1
        registry.record(registry.DLT645_BASE + frame.control)
        if self.clock() > self.model.now:
            self.model.advance_to(self.clock())
        address = fr.address_text(frame.address)
        if frame.control == fr.READ_ADDRESS_2007:
            if address != fr.BROADCAST or len(self.meters) != 1:
                return None
            only = next(iter(self.meters.values()))
            if only.version != "2007":
                return None
            return self._reply(only, 0x93, fr.address_bytes(only.address))
        meter = self.meters.get(address)
        if meter is None or frame.control not in fr.READ_CONTROLS:
            return None
        if (frame.control == fr.READ_1997) != (meter.version == "1997"):
            return None  # a meter of the other edition ignores the frame
        self.requests[address] += 1
        n = self.requests[address]
        error = 0xD1 if meter.version == "2007" else 0xC1
        if meter.error_every and n % meter.error_every == 0:
            return self._reply(meter, error, b"\x01")
        di_len = 4 if meter.version == "2007" else 2
        raw_di = frame.data[:di_len]
        di = normalise_di(raw_di[::-1].hex(), meter.version)
        item = catalogue(meter.version).get(di)
        values = self.model.values(meter.device)
        if item is None or di in meter.unsupported or self.model.silent(meter.device):
            return None if self.model.silent(meter.device) else self._reply(meter, error, b"\x02")
        payload = self._encode(meter, item, values)
        if payload is None:
            return self._reply(meter, error, b"\x02")
        if frame.control == fr.READ_FOLLOW_2007:
            return self._reply(meter, 0x92, raw_di + payload + frame.data[4:5])
        return self._reply(meter, 0x91 if meter.version == "2007" else 0x81, raw_di + payload)

    def _encode(self, meter: SimMeter, item: CatalogueItem, values: dict[str, float]) -> bytes | None:
        fmt = parse_format(item.format)
        now = dt.datetime.fromtimestamp(self.model.now, self.tz)
        primary = plant_value(values, item)
        ratio = {"ct_pt": meter.ct_ratio * meter.pt_ratio, "ct": meter.ct_ratio, "pt": meter.pt_ratio}.get(
            item.ratio, 1
        )
        out = b""
        for f in fmt.fields:
            if f.kind == "date":
                out += encode_date(now.replace(second=0) if "ss" not in f.pattern else now, f)
            elif primary is None:
                return None
            else:
                out += encode_number(primary / ratio, f, item.signed)
        return out

    def _reply(self, meter: SimMeter, control: int, data: bytes) -> bytes:
        fe = meter.fe[self.requests[meter.address] % len(meter.fe)]
        body = bytes(
            [0x68, *fr.address_bytes(meter.address), 0x68, control, len(data), *((b + 0x33) & 0xFF for b in data)]
        )
        reply = b"\xfe" * fe + body + bytes([sum(body) & 0xFF, 0x16])
        if meter.garbage_every and self.requests[meter.address] % meter.garbage_every == 0:
            broken = bytearray(body + bytes([(sum(body) + 1) & 0xFF, 0x16]))
            reply = b"\x00\x13\x68\x99" + bytes(broken) + reply
        return reply

    def _modbus_answer(self, request: bytes) -> bytes | None:
        assert self.modbus is not None
        self.modbus_requests += 1
        unit, function = request[0], request[1]
        start, count = int.from_bytes(request[2:4], "big"), int.from_bytes(request[4:6], "big")
        self.modbus.record(function)
        if unit not in self.modbus.units:
            return None
        self.modbus.refresh()
        words = self.modbus.read(unit, function, start, count)
        if not isinstance(words, list):
            return mb.rtu_frame(unit, bytes([function | 0x80, int(words)]))
        if function in (1, 2):
            packed = bytearray((len(words) + 7) // 8)
            for i, bit in enumerate(words):
                if bit:
                    packed[i // 8] |= 1 << (i % 8)
            return mb.rtu_frame(unit, bytes([function, len(packed), *packed]))
        data = b"".join(int(w).to_bytes(2, "big") for w in words)
        return mb.rtu_frame(unit, bytes([function, len(data)]) + data)

    def _take(self, buffer: bytearray) -> tuple[bytes, bool] | None:
        """The next request off ``buffer``: (frame, is_dlt645), or None when incomplete."""
        while buffer:
            if buffer[0] in (fr.WAKE, fr.START):
                frame = fr.cut(buffer)
                return (frame, True) if frame is not None else None
            if self.modbus is None:
                del buffer[0]
                continue
            if len(buffer) < 8:
                return None
            candidate = bytes(buffer[:8])
            if mb.check_rtu_crc(candidate):
                del buffer[:8]
                return candidate, False
            del buffer[0]
        return None

    async def _serve_stream(self, buffer: bytearray, write: Callable[[bytes], None]) -> None:
        while (taken := self._take(buffer)) is not None:
            request, dlt = taken
            reply = self.answer(request) if dlt else self._modbus_answer(request)
            if reply is None:
                continue
            meter = self.meters.get(fr.address_text(request[1:7])) if dlt else None
            delay = meter.delay_s if meter is not None else 0.0
            if self.wire_baud:
                delay += (len(request) + 4 + len(reply)) * 11 / self.wire_baud + TURNAROUND_S
            if delay:
                await asyncio.sleep(delay)
            write(reply)

    # --- transports -------------------------------------------------------------------------------------------

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen as a serial device server; returns the port."""
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A serial-server client (asyncio's handler task: tracked so ``stop`` ends it quietly)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump(reader, writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        buffer = bytearray()
        try:
            while data := await reader.read(4096):
                buffer += data
                await self._serve_stream(buffer, writer.write)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def dial_in(self, host: str, port: int, registration: bytes, heartbeat: bytes | None, every_s: float) -> None:
        """Connect out like a 4G DTU: registration packet first, then serve requests; a heartbeat every
        ``every_s`` seconds. Reconnects after 0.2 s if the agent closes the connection."""
        self._spawn(self._dial(host, port, registration, heartbeat, every_s))

    async def _dial(self, host: str, port: int, registration: bytes, heartbeat: bytes | None, every_s: float) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            writer.write(registration)
            beat = self._spawn(self._beat(writer, heartbeat, every_s)) if heartbeat else None
            await self._pump(reader, writer)
            if beat is not None:
                beat.cancel()
            await asyncio.sleep(0.2)

    async def _beat(self, writer: asyncio.StreamWriter, heartbeat: bytes, every_s: float) -> None:
        while not writer.is_closing():
            await asyncio.sleep(every_s)
            writer.write(heartbeat)

    def serve_pty(self) -> str:
        """An RS-485 line on a pty pair: the simulator holds one end; clients open the returned path."""
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("a pty line needs socat (Debian package socat)")
        self._ptydir = tempfile.mkdtemp(prefix="dlt645-pty-")
        server_end, client_end = Path(self._ptydir, "server"), Path(self._ptydir, "client")
        self._socat = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={server_end}", f"pty,raw,echo=0,link={client_end}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not (server_end.exists() and client_end.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.01)
        fd = os.open(server_end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._fd = fd
        buffer = bytearray()
        loop = asyncio.get_running_loop()

        def write(data: bytes) -> None:
            os.write(fd, data)

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                buffer.extend(os.read(fd, 4096))
                self._spawn(self._serve_stream(buffer, write))

        loop.add_reader(fd, readable)
        self.pty_path = str(client_end)
        return self.pty_path

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Dlt645Simulator:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in self._writers:
            w.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._socat is not None:
            self._socat.terminate()
            try:
                self._socat.wait(5)
            except subprocess.TimeoutExpired:
                self._socat.kill()
                self._socat.wait(5)
            self._socat = None
        if self._ptydir is not None:
            shutil.rmtree(self._ptydir, ignore_errors=True)
            self._ptydir = None

    def non_read_controls(self) -> dict[int, int]:
        return {c: n for c, n in sorted(self.controls.items()) if c not in fr.READ_CONTROLS}
