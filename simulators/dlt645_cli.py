"""``python -m simulators dlt645``: plant meters speaking DL/T 645 until SIGINT/SIGTERM.

    python -m simulators dlt645 --port 0 --meter main-meter=000000000001:ct=200 --meter pv-meter=000000000009:1997
    python -m simulators dlt645 --dial-in 127.0.0.1:9000 --registration DTU-0001 --heartbeat HB --meter ...
    python -m simulators dlt645 --pty --meter main-meter=000000000001

A meter is ``DEVICE=ADDRESS[:1997][:ct=N][:pt=N][:fe=0,2,4][:delay=S][:garbage=N][:errors=N][:unsupported=DI]``.
Prints ``serving N meters on HOST:PORT`` (or ``on PTY``, or ``dialling HOST:PORT``) when ready, and on exit the
control codes received (a test fails on any but the reads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import time
from typing import Any

from simulators.dlt645_server import Dlt645Simulator, SimMeter
from simulators.plant import PlantModel


def parse_meter(text: str) -> SimMeter:
    device, _, rest = text.partition("=")
    address, *options = rest.split(":")
    kw: dict[str, Any] = {}
    for option in options:
        key, _, value = option.partition("=")
        if key == "1997":
            kw["version"] = "1997"
        elif key in ("ct", "pt"):
            kw[f"{key}_ratio"] = float(value)
        elif key == "fe":
            kw["fe"] = tuple(int(v) for v in value.split(","))
        elif key == "delay":
            kw["delay_s"] = float(value)
        elif key in ("garbage", "errors"):
            kw["garbage_every" if key == "garbage" else "error_every"] = int(value)
        elif key == "unsupported":
            kw["unsupported"] = frozenset(value.split(","))
        else:
            raise argparse.ArgumentTypeError(f"unknown meter option {key!r} in {text!r}")
    return SimMeter(device, address, **kw)


def build_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="listen as a serial device server (0 = any free port)")
    p.add_argument("--pty", action="store_true", help="serve on a pty pair instead (an RS-485 line)")
    p.add_argument("--dial-in", metavar="HOST:PORT", help="connect out to the agent like a 4G DTU")
    p.add_argument("--registration", default="DTU-0001", help="--dial-in: registration packet (text)")
    p.add_argument("--heartbeat", default=None, help="--dial-in: heartbeat packet (text)")
    p.add_argument("--heartbeat-s", type=float, default=30.0)
    p.add_argument("--meter", action="append", type=parse_meter, required=True, help="DEVICE=ADDRESS[:options]")
    p.add_argument("--speed", type=float, default=1.0, help="model seconds per wall-clock second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--wire-baud", type=int, default=None, help="delay replies as a line at this speed would")


async def serve(args: argparse.Namespace) -> int:
    start = math.floor(time.time())
    model = PlantModel(seed=args.seed, start=start)
    t0 = time.monotonic()
    sim = Dlt645Simulator(
        model, args.meter, clock=lambda: start + (time.monotonic() - t0) * args.speed, wire_baud=args.wire_baud
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim:
        if args.dial_in:
            host, _, port = args.dial_in.rpartition(":")
            beat = args.heartbeat.encode() if args.heartbeat else None
            sim.dial_in(host, int(port), args.registration.encode(), beat, args.heartbeat_s)
            print(f"dialling {args.dial_in} as {args.registration} with {len(args.meter)} meters", flush=True)
        elif args.pty:
            print(f"serving {len(args.meter)} meters on {sim.serve_pty()}", flush=True)
        else:
            port = await sim.serve_tcp(args.host, args.port)
            print(f"serving {len(args.meter)} meters on {args.host}:{port}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), None)
    print(f"received control codes {dict(sorted(sim.controls.items()))}", flush=True)
    return 0


def run_args(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(args))
    return 130
