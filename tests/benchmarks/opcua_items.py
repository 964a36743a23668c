"""Benchmark: OPC UA monitored items handled per CPU-second by ``OpcuaSource`` (subscribe mode, 1 s sampling and
publishing, every item changing every second), with the simulator in its own process.

"Handled" = a data-change notification decoded by asyncua, turned into a reading with quality and timestamps, and
every point emitted once per second in a PollResult (the emit here only counts). CPU is this process's user+system
time over the measured window (the agent side only); the simulator's CPU is reported separately.

    .venv/bin/python -m tests.benchmarks.opcua_items [--items 2000] [--seconds 20] [--warmup-s 6]
        [--policy Aes256_Sha256_RsaPss_SignAndEncrypt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from agent.model import PollResult, Quality
from agent.sources.opcua.source import OpcuaSource
from tests.integration.opcua_sim import NAMESPACE, client_pki, device_config, start_sim


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def _measure(items: int, seconds: float, warmup_s: float, policy: str) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as tmp:
        sim = start_sim(Path(tmp) / "sim", extra_items=items, policies=[policy])
        try:
            points = [{"name": f"item{i}", "node_id": f"nsu={NAMESPACE};s=bench.item{i}"} for i in range(items)]
            creds = client_pki(Path(tmp) / "pki", trust=sim) if policy != "None" else None
            cfg = device_config(sim, points, creds=creds, policy=policy, interval_s=1.0, name="bench")
            source = OpcuaSource(cfg)
            results: list[PollResult] = []
            ready = asyncio.Event()  # connected, subscribed, every item has a value

            async def emit(result: PollResult) -> None:
                results.append(result)
                if all(s.quality is Quality.GOOD for s in result.samples):
                    ready.set()

            task = asyncio.create_task(source.run(emit))
            await asyncio.wait_for(ready.wait(), 60)
            await asyncio.sleep(warmup_s)
            n0, r0 = source.notifications, len(results)
            cpu0, wall0, sim0 = time.process_time(), time.monotonic(), _proc_cpu_s(sim.proc.pid)
            await asyncio.sleep(seconds)
            n1, r1 = source.notifications, len(results)
            cpu1, wall1, sim1 = time.process_time(), time.monotonic(), _proc_cpu_s(sim.proc.pid)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            window = results[r0:r1]
            good = sum(1 for r in window for s in r.samples if s.quality is Quality.GOOD)
            cpu = cpu1 - cpu0
            wall = wall1 - wall0
            return {
                "policy": policy,
                "items": items,
                "seconds": round(wall, 2),
                "notifications": n1 - n0,
                "notifications_per_s": round((n1 - n0) / wall, 1),
                "agent_cpu_s": round(cpu, 3),
                "agent_cpu_pct_of_core": round(100 * cpu / wall, 1),
                "items_per_cpu_s": round((n1 - n0) / cpu, 0) if cpu > 0 else 0.0,
                "poll_results": r1 - r0,
                "good_samples_emitted": good,
                "samples_emitted": sum(len(r.samples) for r in window),
                "simulator_cpu_pct_of_core": round(100 * (sim1 - sim0) / wall, 1),
                "agent_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        finally:
            sim.proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup-s", type=float, default=6.0)
    parser.add_argument("--policy", default="None", help="e.g. Aes256_Sha256_RsaPss_SignAndEncrypt")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(_measure(args.items, args.seconds, args.warmup_s, args.policy))
    except ImportError:  # pragma: no cover
        result = asyncio.run(_measure(args.items, args.seconds, args.warmup_s, args.policy))
    print(json.dumps(result))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
