"""DL/T 645: codec speed, and one 9600-baud RS-485 bus of meters against the ``validate`` budget.

    .venv/bin/python -m tests.benchmarks.dlt645_codec [--json-only] [--meters N] [--frames N]

1. ``parse_decode``: reply frames of every numeric catalogue identifier (2007 and 1997, 0-4 FE bytes in front),
   each cut from a byte stream, checked (checksum, end byte, length), unscrambled and decoded (BCD, implied
   decimals, sign): frames per second on one core (target >= 50,000). ``poll`` is the same through a meter's whole
   poll (address and identifier checks, ratios, Samples), per request.
2. ``bus``: ``--meters`` meters (default 8) x 10 identifiers on one RS-485 line (a pty pair by socat) at 9600 baud
   8E1; the simulator holds each reply back by the wire time of both frames plus the meter's 20 ms turnaround
   (``Dlt645Simulator.wire_baud``), so a pty line takes as long as a real one. One polling cycle is timed and set
   beside the budget ``validate`` computes (``agent.config.bus_time``); the budget for 32 meters is printed too,
   for the issue's question whether 32 x 10 fit a 10 s interval.

Prints one JSON object, then a table.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.config.bus_time import dlt645_requests, estimate_bus_cycle_s
from agent.config.dlt645 import Dlt645DeviceConfig, Dlt645ProfileConfig, catalogue, di_bytes, parse_format
from agent.config.load import load_site
from agent.config.site import SerialBusConfig
from agent.errors import DeviceTimeout
from agent.runtime.buses import build_bus_sources
from agent.sources.dlt645 import frame as fr
from agent.sources.dlt645.device import Dlt645Poller
from agent.sources.dlt645.values import decode_field, encode_number
from agent.sources.modbus.source import ModbusSource
from simulators.dlt645_server import Dlt645Simulator, SimMeter
from simulators.plant import PlantModel

TZ = ZoneInfo("Asia/Shanghai")
TEN = ["00-01-00-00", "00-02-00-00", "00-03-00-00", "02-01-01-00", "02-01-02-00", "02-01-03-00"]
TEN += ["02-02-01-00", "02-03-00-00", "02-06-00-00", "02-80-00-02"]


def _frames(n: int) -> list[tuple[bytes, str, bool]]:
    """Reply frames (with 0-4 FE) of every numeric catalogue entry: (bytes, format, signed)."""
    items = []
    for version in ("2007", "1997"):
        for di, item in catalogue(version).items():
            fmt = parse_format(item.format)
            if any(f.kind != "number" for f in fmt.fields):
                continue
            value = b"".join(encode_number(123.45, f, item.signed) for f in fmt.fields)
            data = di_bytes(di, version) + value
            body = bytes([0x68, 1, 0, 0, 0, 0, 0, 0x68, 0x91 if version == "2007" else 0x81, len(data)])
            body += bytes((b + 0x33) & 0xFF for b in data)
            items.append((body + bytes([sum(body) & 0xFF, 0x16]), item.format, item.signed))
    return [(b"\xfe" * (i % 5) + items[i % len(items)][0], *items[i % len(items)][1:]) for i in range(n)]


def parse_decode(n: int) -> float:
    frames = _frames(n)
    formats = {f: parse_format(f) for _, f, _ in frames}
    stream = bytearray(b"".join(f for f, _, _ in frames))
    start = time.perf_counter()
    decoded = 0
    for _, fmt_text, signed in frames:
        raw = fr.cut(stream)
        assert raw is not None
        reply = fr.parse(raw)
        fmt = formats[fmt_text]
        offset = 4 if reply.control == 0x91 else 2
        for f in fmt.fields:
            value, _ = decode_field(reply.data[offset : offset + f.size], f, signed, TZ)
            offset += f.size
            decoded += value is not None
    elapsed = time.perf_counter() - start
    assert decoded >= n and not stream
    return n / elapsed


class _Replay:
    """Answers every request with a prepared reply (no I/O)."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies

    async def exchange(self, frame: bytes, cut: object, timeout_s: float) -> bytes:
        reply = self.replies.get(frame[frame.index(0x68) + 10 : -2])
        if reply is None:
            raise DeviceTimeout("timeout")
        return reply


async def _no_pause() -> None:
    return None


def poll_rate(polls: int) -> float:
    profile = Dlt645ProfileConfig.model_validate(
        {
            "profile": "b",
            "protocol": "dlt645",
            "version": "2007",
            "points": [{"name": f"p{i}", "di": d} for i, d in enumerate(TEN)],
        }
    )
    device = Dlt645DeviceConfig.model_validate(
        {"name": "m", "protocol": "dlt645", "profile": "b", "bus": "b", "address": "000000000001", "ct_ratio": 200}
    )
    device.bind(profile)
    replies = {}
    for p in device.points:
        raw_di = di_bytes(p.di, "2007")
        data = raw_di + b"".join(encode_number(42.5, f, p.signed) for f in p.format.fields)
        body = bytes([0x68, 1, 0, 0, 0, 0, 0, 0x68, 0x91, len(data)]) + bytes((b + 0x33) & 0xFF for b in data)
        replies[bytes((b + 0x33) & 0xFF for b in raw_di)] = body + bytes([sum(body) & 0xFF, 0x16])
    poller = Dlt645Poller(device, "2007", "bench", time.time, TZ)
    link = _Replay(replies)

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(polls):
            await poller.poll(link, _no_pause)
        return polls * len(TEN) / (time.perf_counter() - start)

    return asyncio.run(run())


def _site(folder: Path, pty: str, meters: int) -> Path:
    points = "".join(f"  - {{name: p{i}, di: '{d}'}}\n" for i, d in enumerate(TEN))
    (folder / "ten.yaml").write_text(f"profile: ten\nprotocol: dlt645\nversion: '2007'\npoints:\n{points}")
    devices = "".join(
        f"  - {{name: m{i}, protocol: dlt645, profile: ten, bus: rs485, address: '{i + 1:012d}', preamble: 0, "
        f"interval_s: 10, timeout_ms: 500}}\n"
        for i in range(meters)
    )
    site = folder / "site.yaml"
    site.write_text(
        "site: s\ngateway: g\nprofile_dirs: ['.']\n"
        f"buses:\n  - {{name: rs485, port: '{pty}', baudrate: 9600, pause_ms: 0}}\ndevices:\n{devices}"
    )
    return site


async def bus_cycle(meters: int) -> dict[str, float]:
    model = PlantModel(start=time.time() // 1)
    sims = [SimMeter("main-meter", f"{i + 1:012d}", ct_ratio=200, fe=(0,)) for i in range(meters)]
    async with Dlt645Simulator(model, sims, clock=lambda: model.now, wire_baud=9600) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            site = _site(Path(tmp), sim.serve_pty(), meters)
            loaded = load_site(site)
            bus = loaded.site.buses[0]
            assert isinstance(bus, SerialBusConfig) and bus.parity == "E"  # 8E1: a bus of DL/T 645 meters only
            per_meter = [
                r for d in loaded.site.devices if isinstance(d, Dlt645DeviceConfig) for r in dlt645_requests(d, "2007")
            ]
            budget = estimate_bus_cycle_s(bus, per_meter)
            one = per_meter[: len(TEN)]
            budget32 = estimate_bus_cycle_s(bus, one * 32)
            (source,) = [s for s in build_bus_sources(loaded) if isinstance(s, ModbusSource)]
            start = time.perf_counter()
            bad = 0
            for poller in source.others:
                result = await source.poll_once(poller)
                bad += sum(s.value is None for s in result.samples)
            measured = time.perf_counter() - start
            await source.aclose()
    return {
        "meters": meters,
        "identifiers": len(TEN),
        "budget_s": budget,
        "measured_s": measured,
        "bad": bad,
        "budget_32_meters_s": budget32,
        "requests": meters * len(TEN),
    }


def main(argv: list[str]) -> int:
    meters = int(argv[argv.index("--meters") + 1]) if "--meters" in argv else 8
    frames = int(argv[argv.index("--frames") + 1]) if "--frames" in argv else 200_000
    rate = parse_decode(frames)
    per_request = poll_rate(max(1, frames // 100))
    bus = asyncio.run(bus_cycle(meters))
    result = {
        "benchmark": "dlt645_codec",
        "parse_decode_frames_per_s": round(rate),
        "poll_requests_per_s": round(per_request),
        "bus": {k: round(v, 3) if isinstance(v, float) else v for k, v in bus.items()},
    }
    print(json.dumps(result))
    if "--json-only" not in argv:
        print(f"\nparse + decode       {rate:>12,.0f} frames/s (one core; target >= 50,000)")
        print(f"poll (per request)   {per_request:>12,.0f} requests/s (address, identifier, ratios, Samples)")
        print(
            f"bus 9600 8E1         {bus['meters']} meters x {bus['identifiers']} identifiers: budget {bus['budget_s']:.2f} s, "
            f"measured {bus['measured_s']:.2f} s ({bus['bad']} bad samples)"
        )
        print(f"budget 32 meters     {bus['budget_32_meters_s']:.2f} s per cycle (no FE preamble, no pause)")
    return 0 if rate >= 50_000 and bus["bad"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
