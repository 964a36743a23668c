"""``python -m simulators modbus``: serve the whole simulated plant over Modbus until SIGINT/SIGTERM.

Every device is a unit id on ONE port (a TCP gateway in front of the plant's RS-485 meters; see
``simulators.layout.PLANT_LAYOUT``). Model time starts at the wall clock (rounded down to the step) and runs
``--speed`` times faster. On start it prints ``device -> (port, unit id, profile)`` and, with ``--write-site``,
writes a site file the agent can poll right away.

    python -m simulators modbus --port 5020 --write-site site.yaml --ground-truth truth.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import math
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence

from simulators.faults import FaultPlan
from simulators.layout import PLANT_LAYOUT, plant_units, write_site
from simulators.layout import PROFILE_DIR as PLANT_PROFILES
from simulators.modbus_server import ModbusSimulator
from simulators.plant import PlantModel


def accelerated_clock(model_start: float, speed: float) -> Callable[[], float]:
    """Model time that starts at ``model_start`` now and runs ``speed`` times faster than the monotonic clock."""
    t0 = time.monotonic()
    return lambda: model_start + (time.monotonic() - t0) * speed


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``only``: the subcommand named on it, whose options alone are then built (the OPC UA
    simulator's module imports asyncua, a fifth of a second of CPU at every start of the Modbus one)."""
    p = argparse.ArgumentParser(prog="python -m simulators", description="Plant simulators")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("modbus", help="serve the whole plant over Modbus (one port, one unit id per device)")
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=5020, help="TCP port (0 = any free port, printed on start)")
    m.add_argument("--transport", choices=("tcp", "rtu_over_tcp"), default="tcp")
    m.add_argument("--speed", type=float, default=1.0, help="model seconds per wall-clock second")
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--step-s", type=float, default=1.0, help="model integration step")
    m.add_argument("--ground-truth", metavar="PATH", help="write one JSON line per device per step")
    m.add_argument("--write-site", metavar="PATH", help="write a site file that polls this simulator")
    m.add_argument("--devices", nargs="*", help="serve only these devices (default: all)")
    m.add_argument("--silent-unit", type=int, action="append", default=[], help="a unit id that never answers")
    opcua = sub.add_parser("opcua", help="serve the plant over OPC UA (see simulators.opcua_server)")
    if only in (None, "opcua"):
        from simulators.opcua_server import build_parser as opcua_parser

        opcua_parser(opcua)
    dlt645 = sub.add_parser("dlt645", help="plant meters over DL/T 645 (see simulators.dlt645_cli)")
    if only in (None, "dlt645"):
        from simulators.dlt645_cli import build_parser as dlt645_parser

        dlt645_parser(dlt645)
    return p


async def _serve(args: argparse.Namespace) -> int:
    start = math.floor(time.time() / args.step_s) * args.step_s
    model = PlantModel(seed=args.seed, start=start, step_s=args.step_s)
    if args.ground_truth:
        model.record_to(args.ground_truth)
    faults = FaultPlan(silent_units=frozenset(args.silent_unit))
    units = plant_units(args.devices)
    sim = ModbusSimulator(
        model, units, args.transport, args.host, args.port, accelerated_clock(start, args.speed), faults
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    framing = "tcp" if args.transport == "tcp" else "rtu"
    if args.write_site and args.port:  # before listening: whoever waits for the port finds the site file ready
        write_site(args.write_site, args.host, args.port, framing, devices=args.devices)
    async with sim:
        if args.write_site and not args.port:
            write_site(args.write_site, args.host, sim.port, framing, devices=args.devices)
        for u in units:
            print(f"{u.device} -> ({sim.port}, {u.unit_id}, {PLANT_LAYOUT[u.device][0]})", flush=True)
        print(f"serving {len(units)} devices on {args.host}:{sim.port} ({args.transport})", flush=True)
        while not stop.is_set():  # keep model time (and the ground truth) moving between requests
            sim.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    model.close()
    print(f"served function codes {dict(sorted(sim.served.items()))}", flush=True)
    return 0


EX_UNAVAILABLE = 69  # sysexits.h: a port or file the simulator needs is not available


def listen_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, not an address of this machine, ...), or None."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: the name does not resolve ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"cannot listen on {host}:{port}: the port is in use (another simulator? stop it, or give "
                    "--port 0 for any free port)"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run a simulator; a port in use or a missing file ends with one line on stderr and exit 69, no traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(next((a for a in argv if not a.startswith("-")), None)).parse_args(argv)
    if not PLANT_PROFILES.is_dir():
        print(
            f"python -m simulators: no device profile library at {PLANT_PROFILES} (the checkout's device_profiles/ "
            "or the one deploy/install.sh puts beside the venv)",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    if (why := listen_problem(args.host, args.port)) is not None:
        print(f"python -m simulators {args.command}: {why}", file=sys.stderr)
        return EX_UNAVAILABLE
    try:
        if args.command == "dlt645":
            from simulators.dlt645_cli import run_args as run_dlt645

            return run_dlt645(args)
        if args.command == "opcua":
            from simulators.opcua_server import run_args

            return run_args(args)
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(args))
        return 130
    except OSError as exc:  # a file the simulator writes or reads (site file, ground truth, certificate)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"python -m simulators {args.command}:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EX_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
