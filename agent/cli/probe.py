"""``energy-agent probe SITE.yaml [--device NAME] [--json] [--orders] [--watch]``: read devices and show every point.

Prints per device a header (endpoint, unit, requests, time), each distinct error once with a hint at its likely
cause (ILLEGAL DATA ADDRESS: address, address_base or profile; no reply or a gateway exception: unit_id, host,
port, wiring; OPC UA BadUserAccessDenied: the user or password file; ...), then per point: value, unit, quality,
raw registers (hex) and the reason when no error line gives it already. ``--json`` prints one JSON object per
sample as the wire does (device, point, value, unit, quality, ts, and reason/raw when present).

``--scan-units BUS`` lists which Modbus unit ids answer on a bus, gateway or Modbus TCP device (``agent.cli._scan``;
one read-only request per unit id, ``--units 1-247``, ``--timeout-ms 200``).

``--orders`` adds, for each multi-register point, its registers decoded in all four byte orders, most likely
first: gauges by plausibility, counters (a counter role, or a total's unit such as kWh) by continuity between two
polls one interval apart (see ``_orders``). ``--watch`` polls again every interval (``--interval``, default the
shortest interval of the devices shown) and redraws in place on a terminal, or prints one frame after the other
when the output is not a terminal; Ctrl-C ends it, ``--count N`` after N frames. Read-only, like the agent.

Exit status (of the last frame with ``--watch``): 0 every point of every device shown was read (good, or
uncertain: outside its range); 3 every device answered but some points are bad; 1 a device gave no value at all
(no reply, or every point bad); 2 ``--device`` names no enabled device; 78 a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cli._dlt645 import meter_json, meter_lines, other_edition, run_read_address
from agent.cli._hints import hints
from agent.cli._orders import describe, is_counter, rank_orders
from agent.cli._scan import scan_units
from agent.config.load import LoadedSite
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.profile import DataType
from agent.config.refuse import refuse
from agent.errors import ConfigError, SourceError
from agent.model import PollResult, Quality, Sample
from agent.runtime.buses import build_bus_sources
from agent.runtime.compile import compile_site
from agent.sources.dlt645.device import Dlt645Poller
from agent.sources.dtu import DtuListener
from agent.sources.modbus.codec import bytes_to_registers
from agent.sources.modbus.device import DevicePoller
from agent.sources.modbus.source import ModbusSource
from agent.wire import sample_dict

NAME = "probe"
HELP = "read devices once or live (--watch) and print every point, with hints at the cause of each fault"
EXIT_OK = 0
EXIT_NO_VALUE = 1  # a device gave no value at all
EXIT_SOME_BAD = 3  # every device answered, some points are bad
MAX_ORDERS_WAIT_S = 10.0
_SEVERITY = {EXIT_OK: 0, EXIT_SOME_BAD: 1, EXIT_NO_VALUE: 2}
_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: --watch redraws in place on a terminal


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, help="the gateway's site file")
    parser.add_argument("--device", action="append", default=[], metavar="NAME", help="only this device (repeatable)")
    parser.add_argument("--json", action="store_true", help="one JSON object per sample")
    parser.add_argument(
        "--orders", action="store_true", help="decode multi-register points in all four orders, most likely first"
    )
    parser.add_argument("--watch", action="store_true", help="poll again every interval until Ctrl-C")
    parser.add_argument("--interval", type=float, default=None, metavar="S", help="--watch: seconds between frames")
    parser.add_argument("--count", type=int, default=None, metavar="N", help="--watch: stop after N frames")
    parser.add_argument(
        "--scan-units",
        metavar="BUS",
        help="list the Modbus unit ids that answer on this bus, gateway or TCP device (read-only requests)",
    )
    parser.add_argument("--units", default="1-247", help="--scan-units: the unit ids to try, e.g. 1-32 or 1,5,9-12")
    parser.add_argument("--timeout-ms", type=int, default=200, help="--scan-units: wait per unit id (200)")
    parser.add_argument(
        "--read-address",
        metavar="BUS",
        help="DL/T 645: ask the one meter on this bus (a point-to-point link) for its address and print it",
    )
    parser.epilog = (
        "exit status: 0 every point read; 3 some points bad; 1 a device gave no value (no reply, or every point "
        "bad); 2 no such device; 78 a bad config"
    )


def run(args: argparse.Namespace) -> int:
    try:
        compiled = compile_site(args.site)
    except ConfigError as exc:
        return refuse(exc)
    loaded = compiled.loaded
    if args.scan_units:
        with _quiet("agent.sources"):
            return scan_units(loaded, args)
    if args.read_address:
        return run_read_address(loaded, args.read_address, args.json)
    every = build_bus_sources(loaded, compiled.modbus_plans)
    sources = [s for s in every if isinstance(s, ModbusSource)]
    listener = next((s for s in every if isinstance(s, DtuListener)), None)
    opcua = [d for d in loaded.site.devices if isinstance(d, OpcuaDeviceConfig) and d.enabled]
    known = {name for s in sources for name in s.devices} | {d.name for d in opcua}  # with DL/T 645 meters
    unknown = sorted(set(args.device) - known)
    if unknown:
        print(f"energy-agent probe: no enabled device named {', '.join(unknown)}", file=sys.stderr)
        return 2
    if (args.interval is not None and args.interval <= 0) or (args.count is not None and args.count < 1):
        print("energy-agent probe: --interval must be above 0 and --count at least 1", file=sys.stderr)
        return 2
    only = set(args.device)
    probe = _Probe(loaded, sources, [d for d in opcua if not only or d.name in only], only, args)
    probe.listener = listener
    with _quiet("agent.sources", "asyncua"):  # probe prints each fault once; the agent's state-change log repeats it
        if not args.watch:
            return asyncio.run(probe.once())
        last = _Last()
        try:
            asyncio.run(probe.watch(last))
        except KeyboardInterrupt:
            print()
        return last.code


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@dataclass(slots=True)
class _Last:
    code: int = EXIT_OK


@dataclass(slots=True)
class _Frame:
    lines: list[str] = field(default_factory=list)
    code: int = EXIT_OK

    def add(self, lines: list[str], code: int) -> None:
        self.lines += lines
        self.code = max(self.code, code, key=_SEVERITY.__getitem__)


class _Probe:
    """The devices to show, their open Modbus sources, and the raw registers of the previous poll (--orders)."""

    def __init__(
        self,
        loaded: LoadedSite,
        sources: list[ModbusSource],
        opcua: list[OpcuaDeviceConfig],
        only: set[str],
        args: argparse.Namespace,
    ) -> None:
        self.loaded = loaded
        self.sources = sources
        self.pollers = [(s, p) for s in sources for p in s.pollers if not only or p.name in only]
        self.meters = [
            (s, p) for s in sources for p in s.others if isinstance(p, Dlt645Poller) and (not only or p.name in only)
        ]
        self.listener: DtuListener | None = None
        self._serving: asyncio.Task[None] | None = None
        self.opcua = opcua
        self.as_json: bool = args.json
        self.orders: bool = args.orders
        self.count: int | None = args.count
        intervals = [p.interval_s for _, p in self.pollers] + [d.interval_s for d in opcua]
        intervals += [p.interval_s for _, p in self.meters]
        self.interval_s: float = args.interval or min(intervals, default=1.0)
        self.before: dict[str, dict[str, bytes]] = {}  # device -> point -> raw bytes of the previous poll
        for _, poller in self.pollers:
            poller.capture_raw = True

    async def once(self) -> int:
        try:
            if self.orders and self._has_counters():
                await self._poll_modbus()  # the first of two polls: counters are ranked by how they moved
                wait = max(p.interval_s for _, p in self.pollers)
                await asyncio.sleep(min(wait, MAX_ORDERS_WAIT_S))
            frame = await self.frame()
        finally:
            await self._close()
        print("\n".join(frame.lines), flush=True)
        return frame.code

    async def watch(self, last: _Last) -> None:
        tty = sys.stdout.isatty() and not self.as_json
        start = time.monotonic()
        frames = 0
        try:
            while self.count is None or frames < self.count:
                frame = await self.frame()
                frames += 1
                last.code = frame.code
                if self.as_json:
                    text = "\n".join(frame.lines)
                else:
                    stamp = time.strftime("%H:%M:%S")
                    head = f"{self.loaded.path} at {stamp}, every {self.interval_s:g} s (Ctrl-C ends)"
                    text = (_CLEAR if tty else "") + "\n".join([head, *frame.lines]) + ("" if tty else "\n")
                print(text, flush=True)
                if self.count is not None and frames >= self.count:
                    break
                await asyncio.sleep(max(0.0, start + frames * self.interval_s - time.monotonic()))
        finally:
            await self._close()

    def _has_counters(self) -> bool:
        return any(
            is_counter(p.config) and p.codec.width > 1 for _, poller in self.pollers for p in _points(poller).values()
        )

    async def _poll_modbus(self) -> list[tuple[DevicePoller, PollResult]]:
        out = []
        for source, poller in self.pollers:
            before = dict(poller.raw)
            result = await source.poll_once(poller)
            if before:
                self.before[poller.name] = before
            out.append((poller, result))
        return out

    async def _dial_ins(self) -> None:
        """With DTU buses: listen, and give the DTUs up to their registration timeout to dial in."""
        listener = self.listener
        if listener is None or self._serving is not None:
            return
        self._serving = asyncio.create_task(listener.run())
        await listener.listening.wait()
        wanted = {getattr(s, "name", "") for s, _ in self.meters} | {getattr(s, "name", "") for s, _ in self.pollers}
        wanted &= {d.bus for d in listener.dtus}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(listener.config.registration_timeout_s):
                while not wanted <= set(listener.live):  # noqa: ASYNC110  # reason: registration has no event
                    await asyncio.sleep(0.05)

    async def _meter_lines(self) -> tuple[list[str], int]:
        lines: list[str] = []
        code = EXIT_OK
        for source, poller in self.meters:
            result = await source.poll_once(poller)
            extra = []
            silent = poller.consecutive_failures and result.errors and "timeout" in result.errors[0]
            if silent and source.link is not None:
                other = await other_edition(source.link, poller)
                extra = [other] if other else []
            if self.as_json:
                lines += meter_json(result)
            else:
                lines += meter_lines(poller, result, extra)
            code = max(code, _code(result.samples), key=_SEVERITY.__getitem__)
        return lines, code

    async def frame(self) -> _Frame:
        frame = _Frame()
        await self._dial_ins()
        if self.meters:
            frame.add(*await self._meter_lines())
        for poller, result in await self._poll_modbus():
            before = self.before.get(poller.name) if self.orders else None
            if self.as_json:
                frame.add(_json_lines(result, poller), _code(result.samples))
            else:
                frame.add(*_modbus_lines(poller, result, self.orders, before))
        for device in self.opcua:
            frame.add(*await self._opcua(device))
        return frame

    async def _opcua(self, device: OpcuaDeviceConfig) -> tuple[list[str], int]:
        """One Read of every point of an OPC UA device (asyncua is imported only when the site has one)."""
        from agent.sources.opcua import probe_opcua

        try:
            result = await probe_opcua(self.loaded, device.name)
        except SourceError as exc:
            error = str(exc).removeprefix(f"{device.name}: ")
            if self.as_json:
                print(f"{device.name}: FAILED: {error}", file=sys.stderr)
                return [], EXIT_NO_VALUE
            lines = [f"{device.name} (OPC UA {device.endpoint}): FAILED", f"  error: {error}"]
            return lines + [f"  hint: {h}" for h in hints([error])], EXIT_NO_VALUE
        if self.as_json:
            return _json_lines(result), _code(result.samples)
        bad = sum(s.quality is Quality.BAD for s in result.samples)
        state = _state(bad, len(result.samples))
        lines = [f"{device.name} (OPC UA {device.endpoint}): {state} in {result.duration_s * 1000:.1f} ms"]
        errors = [e.removeprefix(f"{device.name}: ") for e in dict.fromkeys(result.errors)]
        lines += _fault_lines(errors, result.samples)
        for s in result.samples:
            lines.append(_point_line(s, "", errors))
        return lines, _code(result.samples)

    async def _close(self) -> None:
        for source in self.sources:
            await source.aclose()
        if self._serving is not None:
            self._serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving


def _code(samples: tuple[Sample, ...]) -> int:
    bad = sum(s.quality is Quality.BAD for s in samples)
    if samples and bad == len(samples):
        return EXIT_NO_VALUE
    return EXIT_SOME_BAD if bad else EXIT_OK


def _state(bad: int, total: int) -> str:
    if total and bad == total:
        return "answered, but no point could be read"
    return f"answered, {bad} of {total} points bad" if bad else "answered"


def _fault_lines(errors: list[str], samples: tuple[Sample, ...]) -> list[str]:
    """Each error once, then each distinct hint once (for the errors and the reasons of the points)."""
    reasons = [s.reason for s in samples if s.reason and s.quality is not Quality.GOOD]
    return [f"  error: {e}" for e in errors] + [f"  hint: {h}" for h in hints(errors + reasons)]


def _point_line(s: Sample, raw: str, errors: list[str]) -> str:
    """Value, unit, quality, raw registers (only when read in this poll) and the reason no error line gives."""
    value = "-" if s.value is None else repr(s.value) if isinstance(s.value, str) else f"{s.value}"
    said = bool(s.reason) and any(s.reason in e for e in errors)
    reason = f"  ({s.reason})" if s.reason and not said else ""
    raw = f" [{raw}]" if raw and not said else ""
    return f"  {s.point:<28} {value:>18} {s.unit:<6} {s.quality.value:<9}{raw}{reason}".rstrip()


def _points(poller: DevicePoller) -> dict[str, Any]:
    return {p.name: p for r in poller.plan.requests for p in r.points}


def _raw_hex(poller: DevicePoller, point: str) -> str:
    raw = poller.raw.get(point)
    if raw is None:
        return ""
    if len(raw) == 1:  # a coil or discrete input
        return str(raw[0])
    return " ".join(f"{r:04X}" for r in bytes_to_registers(raw))


def _modbus_lines(
    poller: DevicePoller, result: PollResult, orders: bool, before: dict[str, bytes] | None
) -> tuple[list[str], int]:
    bad = sum(s.quality is Quality.BAD for s in result.samples)
    silent = poller.consecutive_failures and not poller.last_answered
    state = "FAILED (no reply)" if silent else _state(bad, len(result.samples))
    n = result.requests
    lines = [
        f"{result.device} ({poller.endpoint}, unit {poller.config.unit_id}): {state}, "
        f"{n} request{'s' if n != 1 else ''} in {result.duration_s * 1000:.1f} ms"
    ]
    errors = list(dict.fromkeys(result.errors))
    lines += _fault_lines(errors, result.samples)
    points = _points(poller)
    for s in result.samples:
        lines.append(_point_line(s, _raw_hex(poller, s.point), errors))
        planned = points[s.point]
        if not orders or s.value is None or planned.codec.width < 2 or planned.codec.data_type is DataType.STRING:
            continue
        now = bytes_to_registers(poller.raw[s.point])
        earlier = before.get(s.point) if before is not None else None
        ranked, how = rank_orders(planned.config, now, bytes_to_registers(earlier) if earlier else None)
        lines.append("      " + describe(ranked, how, planned.codec.order))
    return lines, _code(result.samples)


def _json_lines(result: PollResult, poller: DevicePoller | None = None) -> list[str]:
    lines = []
    for s in result.samples:
        obj: dict[str, Any] = {"device": s.device, **sample_dict(s)}
        raw = _raw_hex(poller, s.point) if poller is not None and s.value is not None else ""
        if raw:
            obj["raw"] = raw
        lines.append(json.dumps(obj, ensure_ascii=False))
    return lines
