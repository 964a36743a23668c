"""``energy-agent probe SITE.yaml [--device NAME] [--json] [--orders]``: poll each selected Modbus device once.

Prints per point: value, unit, quality, reason and the raw registers (hex). ``--json`` prints one JSON object per
sample (device, point, value, unit, quality, ts, and reason/raw when present). ``--orders`` adds, for each
multi-register point, its registers decoded in all four byte orders, most plausible first (for commissioning a
device whose manual is vague about word order). Read-only, like the agent. Exit 0 when every selected device
answered, 1 when some did not, 78 on a bad config, 2 when ``--device`` names no Modbus device.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli._config import refuse
from agent.config.load import load_site
from agent.config.profile import DataType
from agent.errors import ConfigError
from agent.model import PollResult
from agent.sources.modbus.codec import bytes_to_registers, decode_all_orders
from agent.sources.modbus.device import DevicePoller
from agent.sources.modbus.source import ModbusSource, build_modbus_sources
from agent.wire import sample_dict

NAME = "probe"
HELP = "poll devices once (Modbus with raw registers, OPC UA with status names) and print every point"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, help="the gateway's site file")
    parser.add_argument("--device", action="append", default=[], metavar="NAME", help="only this device (repeatable)")
    parser.add_argument("--json", action="store_true", help="one JSON object per sample")
    parser.add_argument("--orders", action="store_true", help="decode multi-register points in all four orders")


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site)
        sources = build_modbus_sources(loaded)
    except ConfigError as exc:
        return refuse(exc)
    opcua = [d.name for d in loaded.site.devices if d.protocol == "opcua" and getattr(d, "enabled", True)]
    known = {name for s in sources for name in s.devices} | set(opcua)
    unknown = sorted(set(args.device) - known)
    if unknown:
        print(f"energy-agent probe: no enabled device named {', '.join(unknown)}", file=sys.stderr)
        return 2
    only = set(args.device)
    results = asyncio.run(_probe(sources, only))
    failed = 0
    for _source, poller, result in results:
        failed += poller.consecutive_failures > 0
        lines = _json_lines(result, poller) if args.json else _text_lines(poller, result, args.orders)
        print("\n".join(lines))
    for name in opcua:
        if only and name not in only:
            continue
        ok, lines = asyncio.run(_probe_opcua(loaded, name, args.json))
        failed += not ok
        print("\n".join(lines))
    return 1 if failed else 0


async def _probe_opcua(loaded: Any, name: str, as_json: bool) -> tuple[bool, list[str]]:
    """One Read of every point of an OPC UA device (asyncua is imported only when the site has one)."""
    from agent.errors import SourceError
    from agent.sources.opcua import probe_opcua

    try:
        result = await probe_opcua(loaded, name)
    except SourceError as exc:
        return False, [f"{name}: FAILED: {exc}"]
    if as_json:
        return True, _json_lines(result)
    lines = [f"{result.device} (OPC UA): answered in {result.duration_s * 1000:.1f} ms"]
    for s in result.samples:
        value = "-" if s.value is None else f"{s.value}"
        reason = f"  ({s.reason})" if s.reason else ""
        lines.append(f"  {s.point:<28} {value:>18} {s.unit:<6} {s.quality.value:<9}{reason}")
    return True, lines


async def _probe(sources: list[ModbusSource], only: set[str]) -> list[tuple[ModbusSource, DevicePoller, PollResult]]:
    out = []
    for source in sources:
        try:
            for poller in source.pollers:
                if only and poller.name not in only:
                    continue
                poller.capture_raw = True
                out.append((source, poller, await source.poll_once(poller)))
        finally:
            await source.aclose()
    return out


def _raw_hex(poller: DevicePoller, point: str) -> str:
    raw = poller.raw.get(point)
    if raw is None:
        return ""
    if len(raw) == 1:  # a coil or discrete input
        return str(raw[0])
    return " ".join(f"{r:04X}" for r in bytes_to_registers(raw))


def _text_lines(poller: DevicePoller, result: PollResult, orders: bool) -> list[str]:
    state = "answered" if poller.consecutive_failures == 0 else "FAILED"
    lines = [
        f"{result.device} ({poller.endpoint}, unit {poller.config.unit_id}): {state}, "
        f"{result.requests} requests in {result.duration_s * 1000:.1f} ms"
    ]
    lines += [f"  error: {e}" for e in result.errors]
    points = {p.name: p for r in poller.plan.requests for p in r.points}
    for s in result.samples:
        value = "-" if s.value is None else repr(s.value) if isinstance(s.value, str) else f"{s.value}"
        reason = f"  ({s.reason})" if s.reason else ""
        raw = _raw_hex(poller, s.point)
        raw = f" [{raw}]" if raw else ""
        lines.append(f"  {s.point:<28} {value:>18} {s.unit:<6} {s.quality.value:<9}{raw}{reason}")
        planned = points[s.point]
        dt = planned.codec.data_type
        if orders and s.point in poller.raw and planned.codec.width > 1 and dt is not DataType.STRING:
            cfg = planned.config
            guesses = decode_all_orders(
                bytes_to_registers(poller.raw[s.point]),
                dt,
                scale=cfg.scale,
                offset=cfg.offset,
                value_range=cfg.range,
            )
            lines.append(
                "      orders: "
                + ", ".join(f"{g.order.value}={g.value}" for g in guesses)
                + f" (now {planned.codec.order.value})"
            )
    return lines


def _json_lines(result: PollResult, poller: DevicePoller | None = None) -> list[str]:
    lines = []
    for s in result.samples:
        obj: dict[str, Any] = {"device": s.device, **sample_dict(s)}
        raw = _raw_hex(poller, s.point) if poller is not None else ""
        if raw:
            obj["raw"] = raw
        lines.append(json.dumps(obj, ensure_ascii=False))
    return lines
