"""Samples decoded and delivered per CPU-second: N simulated Modbus TCP devices x 50 points, polled every second.

    .venv/bin/python -m tests.benchmarks.modbus_throughput [--devices 100] [--seconds 15] [--warmup 3]

The simulator (simulators.modbus_server, one port, one unit id per device) runs in a separate process; the agent
side is this process: ``build_modbus_sources`` on a generated site (one TCP connection per device, as with
``host``), every source in one TaskGroup on uvloop, ``emit`` counting samples. CPU is this process's
``time.process_time()`` over the measuring window (the simulator's CPU is reported separately from /proc).
Profile: 40 float32 (CDAB) input registers + 10 uint32 x 0.01 counters (ABCD) in holding registers = 50 points,
2 requests per poll. Prints one JSON object, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

PROFILE: dict[str, Any] = {
    "profile": "bench-50",
    "description": "benchmark: 50 points in 2 requests",
    "category": "energy_meter",
    "address_base": 0,
    "byte_order": "CDAB",
    "points": [
        {
            "name": f"f{i}",
            "kind": "input_register",
            "address": 2 * i,
            "type": "float32",
            "unit": "kW",
            "range": [0, 1000],
        }
        for i in range(40)
    ]
    + [
        {
            "name": f"c{i}",
            "kind": "holding_register",
            "address": 100 + 2 * i,
            "type": "uint32",
            "order": "ABCD",
            "scale": 0.01,
            "unit": "kWh",
            "range": [0, 40_000_000],
        }
        for i in range(10)
    ],
}


def _dump(obj: Any, path: Path) -> None:
    with path.open("w") as f:
        YAML(typ="safe").dump(obj, f)


async def _serve(port: int, profile_path: Path, devices: int) -> None:
    from simulators.modbus_server import ModbusSimulator, SimUnit
    from simulators.plant import PlantModel

    model = PlantModel(start=float(int(time.time())))
    units = [SimUnit("kiln1-meter", profile_path, i + 1) for i in range(devices)]
    async with ModbusSimulator(model, units, port=port):
        print("ready", flush=True)
        await asyncio.Event().wait()


def _cpu_s_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(site: Path, warmup_s: float, seconds: float) -> dict[str, Any]:
    from agent.config.load import load_site
    from agent.model import PollResult, Quality
    from agent.sources.modbus import build_modbus_sources

    sources = build_modbus_sources(load_site(site))
    counting = False
    samples = good = polls = 0
    durations: list[float] = []

    async def emit(result: PollResult) -> None:
        nonlocal samples, good, polls
        if counting:
            polls += 1
            samples += len(result.samples)
            good += sum(1 for s in result.samples if s.quality is Quality.GOOD)
            durations.append(result.duration_s)

    async def window() -> dict[str, Any]:
        nonlocal counting
        await asyncio.sleep(warmup_s)
        counting = True
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        counting = False
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        raise _Done({"cpu_s": cpu, "wall_s": wall})

    try:
        async with asyncio.TaskGroup() as tg:
            for source in sources:
                tg.create_task(source.run(emit))
            tg.create_task(window())
    except* _Done as group:
        figures: dict[str, Any] = group.exceptions[0].args[0]
    missed = sum(h.errors_by_kind.get("missed_slot", 0) for s in sources for h in s.health())
    durations.sort()
    figures.update(
        devices=len(sources),
        polls=polls,
        samples=samples,
        good=good,
        missed_slots=missed,
        poll_p50_ms=1000 * statistics.median(durations) if durations else None,
        poll_p95_ms=1000 * durations[int(0.95 * (len(durations) - 1))] if durations else None,
    )
    return figures


class _Done(Exception):
    pass


def decode_cost_us_per_point(profile_path: Path, rounds: int = 2000) -> float:
    """CPU µs per point to decode one poll's replies into Samples (no I/O): the hot path alone."""
    from agent.config.load import load_profile
    from agent.config.site import ModbusDeviceConfig
    from agent.model import Sample
    from agent.sources.modbus.device import DevicePoller
    from agent.sources.modbus.plan import build_read_plan

    profile = load_profile(profile_path)
    device = ModbusDeviceConfig.model_validate({"name": "d", "profile": profile.profile, "host": "127.0.0.1"})
    poller = DevicePoller(device, build_read_plan(profile, device), "127.0.0.1:502", time.time)
    payloads = [(r, bytes(range(256))[: 2 * r.count] if not r.is_bits else b"\x55" * 250) for r in poller.slots]
    samples: dict[str, Sample] = {}
    t0 = time.process_time()
    for _ in range(rounds):
        for request, data in payloads:
            poller._decode(samples, request, data, 0.0)
    return (time.process_time() - t0) / (rounds * len(profile.points)) * 1e6


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "PROFILE", "DEVICES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(int(args.serve[0]), Path(args.serve[1]), int(args.serve[2])))
        return 0

    from tests.servers.process import free_port

    with tempfile.TemporaryDirectory(prefix="modbus-bench-") as tmp:
        root = Path(tmp)
        (root / "profiles").mkdir()
        profile_path = root / "profiles" / "bench-50.yaml"
        _dump(PROFILE, profile_path)
        port = free_port()
        devices = [
            {"name": f"dev{i:03d}", "profile": "bench-50", "host": "127.0.0.1", "port": port, "unit_id": i + 1}
            for i in range(args.devices)
        ]
        site = root / "site.yaml"
        _dump(
            {"site": "bench", "gateway": "gw", "profile_dirs": ["profiles"], "state_dir": tmp, "devices": devices}, site
        )
        cmd = [sys.executable, "-m", "tests.benchmarks.modbus_throughput", "--serve", str(port), str(profile_path)]
        sim = subprocess.Popen([*cmd, str(args.devices)], stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert sim.stdout is not None
            if sim.stdout.readline().strip() != b"ready":
                raise RuntimeError("simulator did not start")
            sim_cpu0 = _cpu_s_of(sim.pid)
            try:
                import uvloop

                runner: Any = uvloop.run
            except ImportError:  # pragma: no cover - uvloop is a dependency
                runner = asyncio.run
            figures = runner(_measure(site, args.warmup, args.seconds))
            sim_cpu = _cpu_s_of(sim.pid) - sim_cpu0
        finally:
            sim.terminate()
            sim.wait(10)
        decode_us = decode_cost_us_per_point(profile_path)
    per_s = figures["samples"] / figures["wall_s"]
    result = {
        "benchmark": "modbus_throughput",
        "points_per_device": len(PROFILE["points"]),
        **figures,
        "samples_per_s": per_s,
        "samples_per_cpu_s": figures["samples"] / figures["cpu_s"],
        "cpu_ms_per_1000_points": 1000 * figures["cpu_s"] / figures["samples"] * 1000 if figures["samples"] else None,
        "agent_cpu_pct": 100 * figures["cpu_s"] / figures["wall_s"],
        "simulator_cpu_pct": 100 * sim_cpu / figures["wall_s"],
        "decode_us_per_point": decode_us,
    }
    print(json.dumps(result))
    print(f"\n{'devices x points':<28} {args.devices} x {result['points_per_device']} every 1 s")
    for key in (
        "samples_per_s",
        "good",
        "samples_per_cpu_s",
        "cpu_ms_per_1000_points",
        "agent_cpu_pct",
        "simulator_cpu_pct",
        "poll_p50_ms",
        "poll_p95_ms",
        "missed_slots",
        "decode_us_per_point",
    ):
        value = result[key]
        print(f"{key:<28} {value:.2f}" if isinstance(value, float) else f"{key:<28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
