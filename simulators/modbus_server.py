"""The plant's devices served over Modbus (pymodbus 3.16's server), with fault injection.

``ModbusSimulator`` serves several units on one endpoint: a Modbus TCP gateway routing by unit id (``tcp``), a
serial device server passing raw RTU frames over TCP (``rtu_over_tcp``), or an RS-485 bus on a pseudo-terminal
pair made by socat (``rtu_pty``: the simulator opens one end, clients open ``pty_path``).

Each request refreshes the register images lazily: the model is advanced to ``clock()`` (model time; use an
accelerated or stepped clock in tests) and the images are re-encoded when the model changed. Reads outside a
unit's image answer ILLEGAL DATA ADDRESS; writes answer ILLEGAL FUNCTION and are recorded (the read-only check).
A unit id nobody serves gets exception 0x0B (GATEWAY TARGET DEVICE FAILED TO RESPOND) over ``tcp`` and silence on
RTU framings, as a real gateway or bus would. A unit whose device is in an injected ``outage`` never answers.

Lifecycle: ``async with ModbusSimulator(...) as sim`` listens on entry and closes everything on exit (the socat
process is stopped by PID). One asyncio loop owns the simulator and its model.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.transaction import TransactionManager

from agent.config.profile import ProfileConfig
from simulators import registry
from simulators.faults import Action, CounterFault, FaultPlan, FaultSchedule, FaultStats
from simulators.image import FC_TABLE, RegisterImage, load_profile, wrap_value
from simulators.plant import PlantModel

Transport = Literal["tcp", "rtu_over_tcp", "rtu_pty"]
MAX_CATCH_UP_S = 7 * 86400.0  # refuse a clock further ahead of the model than this (a wrong clock, not a test)


@dataclass(frozen=True, slots=True)
class SimUnit:
    """One device on the simulator: its profile (a model or a YAML path), unit id, and points served as holes."""

    device: str
    profile: ProfileConfig | str | Path
    unit_id: int
    holes: frozenset[str] = frozenset()


class _Context(ModbusServerContext):
    """Serves reads from the simulator's images; pymodbus calls it from each request's datastore_update."""

    def __init__(self, sim: ModbusSimulator) -> None:  # no super().__init__: that builds pymodbus' own store
        self.old_simulator = True
        self.simdevices = []
        self._sim = sim

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        return self._sim.read(device_id, func_code, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        return ExcCodes.ILLEGAL_FUNCTION  # read-only plant: the write was recorded when it arrived

    def device_ids(self) -> list[int]:
        return list(self._sim.units)


class _Handler(ServerRequestHandler):
    """One connection (or the serial line): decodes frames, applies the fault schedule, answers."""

    def __init__(self, owner: Any, sim: ModbusSimulator) -> None:
        super().__init__(owner, None, None, None)  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
        self.sim = sim

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        try:
            used: int = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:  # an unknown function code, or a known one with invalid fields
            at = 7 if self.sim.transport == "tcp" else 1  # after the MBAP header, or after the RTU unit id
            fc = exc.fcode if exc.fcode is not None else (data[at] if len(data) > at else 0)
            self.sim.record(fc)
            known = fc in self.framer.decoder.pdu_table
            code = ExcCodes.ILLEGAL_VALUE if known else ExcCodes.ILLEGAL_FUNCTION
            reply = ExceptionResponse(fc, code, exc.dev_id, exc.transaction_id)
            self.server_send(reply, addr)  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
            return len(data)
        if self.last_pdu is not None:
            self.sim.spawn(self._answer(self.last_pdu, self.last_addr))
        return used

    async def _answer(self, pdu: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        sim = self.sim
        fc, unit = pdu.function_code, pdu.dev_id
        sim.record(fc)
        serial_framing = sim.transport != "tcp"
        if unit not in sim.units:
            sim.stats.unknown_unit += 1
            if not serial_framing:
                self._send(ExceptionResponse(fc, ExcCodes.GATEWAY_NO_RESPONSE, unit, pdu.transaction_id), addr)
            return
        decision = sim.schedule.decide(unit, fc)
        if decision.action is Action.SILENT:
            return
        sim.refresh()
        if sim.model.silent(sim.units[unit].device):
            sim.stats.faults["outage"] += 1
            return
        if decision.action is Action.DROP:
            if sim.transport != "rtu_pty":  # a socket (Modbus TCP, RTU over TCP) is closed; a serial line is silent
                self.close()
            return
        if decision.action is Action.LATE:
            await asyncio.sleep(sim.schedule.plan.late_s)
        if decision.action is Action.EXCEPTION:
            reply: ModbusPDU = ExceptionResponse(fc, decision.exception_code, unit, pdu.transaction_id)
        else:
            reply = await pdu.datastore_update(sim.context, unit)
        reply.transaction_id = pdu.transaction_id
        reply.dev_id = unit
        if decision.action is Action.BAD_BYTE_COUNT and not isinstance(reply, ExceptionResponse):
            sim.stats.faults[Action.BAD_BYTE_COUNT.value] += 1
            self._send_bad_byte_count(reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        if self.transport is None:  # the client went away while a late reply waited
            return
        self.server_send(reply, addr)  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
        self.sim.stats.answered += 1

    def _send_bad_byte_count(self, reply: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        if self.transport is None:
            return
        frame = bytearray(self.framer.buildFrame(reply))
        if self.sim.transport == "tcp":
            frame[8] = (frame[8] - 2) % 256  # MBAP (7) + function code, then the byte count
        else:
            frame[2] = (frame[2] - 2) % 256  # unit, function code, then the byte count; CRC recomputed below
            frame[-2:] = FramerRTU.compute_CRC(bytes(frame[:-2])).to_bytes(2, "big")
        self.low_level_send(bytes(frame), addr=addr)
        self.sim.stats.answered += 1


class _TcpServer(ModbusTcpServer):
    sim: ModbusSimulator

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.sim)


class _SerialServer(ModbusSerialServer):
    sim: ModbusSimulator

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.sim)


class ModbusSimulator:
    """Serves ``units`` of ``model`` on one endpoint. ``served`` counts function codes; ``stats`` faults."""

    def __init__(
        self,
        model: PlantModel,
        units: Sequence[SimUnit],
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        faults: FaultPlan | None = None,
        baudrate: int = 19200,
    ) -> None:
        if transport not in ("tcp", "rtu_over_tcp", "rtu_pty"):
            raise ValueError(f"transport must be tcp, rtu_over_tcp or rtu_pty, got {transport!r}")
        self.model = model
        self.transport: Transport = transport
        self.host = host
        self.port = port
        self.clock = clock
        self.baudrate = baudrate
        self.schedule = FaultSchedule(faults)
        self.served: Counter[int] = Counter()
        self.units: dict[int, SimUnit] = {}
        self.images: dict[int, RegisterImage] = {}
        for u in units:
            if u.unit_id in self.units:
                raise ValueError(f"unit id {u.unit_id} is used by {self.units[u.unit_id].device} and {u.device}")
            profile = u.profile if isinstance(u.profile, ProfileConfig) else load_profile(u.profile)
            model.kind(u.device)  # raises for a device the plant does not have
            self.units[u.unit_id] = u
            self.images[u.unit_id] = RegisterImage(u.device, profile, u.holes)
        self.context = _Context(self)
        self.pty_path: str | None = None
        self._pending = sorted(self.schedule.plan.counter_faults, key=lambda f: f.at)
        self._revisions: dict[int, int] = dict.fromkeys(self.units, -1)  # model revision each image shows
        self._server: _TcpServer | _SerialServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._socat: subprocess.Popen[bytes] | None = None
        self._ptydir: str | None = None

    @property
    def stats(self) -> FaultStats:
        return self.schedule.stats

    def image(self, device: str) -> RegisterImage:
        for unit_id, u in self.units.items():
            if u.device == device:
                return self.images[unit_id]
        raise KeyError(f"{device} is not served by this simulator")

    # --- serving ------------------------------------------------------------------------------------------------

    def record(self, function_code: int) -> None:
        self.served[function_code] += 1
        registry.record(function_code)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def refresh(self) -> None:
        """Advance the model to clock(), applying counter faults at their model times. Images are re-encoded
        lazily, each when it is read after the model changed."""
        now = self.clock()
        if now - self.model.now > MAX_CATCH_UP_S:
            raise RuntimeError(
                f"clock() is {now - self.model.now:.0f} s ahead of the model (now={self.model.now}); "
                "start the PlantModel near the clock or pass a clock that returns model time"
            )
        while self._pending and self._pending[0].at <= now:
            fault = self._pending.pop(0)
            self.model.advance_to(fault.at)
            self._apply(fault)
        self.model.advance_to(now)

    def _current(self, unit: int) -> RegisterImage:
        image = self.images[unit]
        if self._revisions[unit] != self.model.revision:
            image.refresh(self.model.values(self.units[unit].device))
            self._revisions[unit] = self.model.revision
        return image

    def _apply(self, fault: CounterFault) -> None:
        if fault.kind == "reset":
            self.model.inject(fault.device, "reset_counter", role=fault.counter)
        else:
            wrap = wrap_value(self.image(fault.device).point_for(fault.counter))
            if wrap is None:
                raise ValueError(f"{fault.device} {fault.counter} is not an unsigned integer: it cannot wrap")
            self.model.inject(fault.device, "counter_offset", role=fault.counter, value=wrap - fault.before_wrap)
        self.stats.counter_faults += 1

    def read(self, unit: int, function_code: int, address: int, count: int) -> list[int] | list[bool] | ExcCodes:
        kind = FC_TABLE.get(function_code)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not 1 <= count <= (2000 if kind.is_bit else 125):  # the protocol's limits, as a device enforces them
            return ExcCodes.ILLEGAL_VALUE
        words = self._current(unit).read(kind, address, count)
        if words is None:
            self.stats.illegal_address += 1
            return ExcCodes.ILLEGAL_ADDRESS
        if kind.is_bit:
            return [bool(w) for w in words]
        return words

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> ModbusSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.refresh()
        server: _TcpServer | _SerialServer
        if self.transport == "rtu_pty":
            server_end = self._open_pty_pair()  # blocks a few ms at start, once
            server = _SerialServer(self.context, framer=FramerType.RTU, port=server_end, baudrate=self.baudrate)
        else:
            framer = FramerType.SOCKET if self.transport == "tcp" else FramerType.RTU
            server = _TcpServer(self.context, framer=framer, address=(self.host, self.port))
        server.sim = self
        self._server = server
        await server.serve_forever(background=True)
        if self.transport != "rtu_pty":
            listener: asyncio.Server = server.transport  # type: ignore[assignment]  # a listening transport is a Server
            self.port = int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    def _open_pty_pair(self) -> str:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("rtu_pty needs socat (Debian package socat)")
        self._ptydir = tempfile.mkdtemp(prefix="modbus-pty-")
        server_end, client_end = Path(self._ptydir, "server"), Path(self._ptydir, "client")
        self._socat = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={server_end}", f"pty,raw,echo=0,link={client_end}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 5.0
        while not (server_end.exists() and client_end.exists()):
            if self._socat.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat did not create the pty pair in {self._ptydir}")
            time.sleep(0.005)
        self.pty_path = str(client_end)
        return str(server_end)
