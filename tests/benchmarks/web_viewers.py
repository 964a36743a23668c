"""The agent's event loop with web viewers: does pushing the page to N browsers delay polling?

    .venv/bin/python -m tests.benchmarks.web_viewers [--viewers 50] [--seconds 30] [--warmup 10]

Processes: the plant simulator (11 devices, one Modbus TCP port, polled every second), mosquitto, the agent
(``python -m agent run``, the demo's KPIs, the page on loopback) and, in this process, N WebSocket viewers (aiohttp) that take
every frame. Two phases of ``--seconds`` each: no viewer, then N viewers. Per phase, from the agent's own loop-lag
monitor (a 0.25 s sleeper; ``loop_lag_recent_ms`` of the page, the last 10 s, sampled every 10 s): the worst p99
and max; the agent's CPU (user+sys from /proc) per second; polls per second; frames and bytes the viewers got;
how long one push took the agent (building and encoding the frame once for all viewers, last 60 pushes); and
how long the event loop's thread waited for a CPU (/proc schedstat): lag that is the machine's, not the loop's.
Prints one JSON object, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from agent.cli.demo import DEMO_KPI
from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.servers.mosquitto import mosquitto
from tests.servers.process import free_port
from tests.simfixtures import simulator_process


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_delay_s(pid: int) -> float:
    """Time the agent's main thread (the event loop) spent runnable but waiting for a CPU (schedstat, ns)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


class Viewers:
    """N WebSocket viewers of the page, counting what they receive."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.n = n
        self.frames = [0] * n
        self.bytes = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Viewers:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._tasks = [asyncio.create_task(self._view(i)) for i in range(self.n)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _view(self, i: int) -> None:
        assert self._http is not None
        async with self._http.ws_connect(self.url, max_msg_size=0) as ws:
            async for msg in ws:
                self.frames[i] += 1
                self.bytes += len(msg.data)


async def snapshot(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(base + "/api/snapshot") as r:
        body: dict[str, Any] = orjson.loads(await r.read())
        return body


async def phase(agent: AgentProcess, base: str, viewers: int, seconds: float) -> dict[str, Any]:
    """One measuring phase: the worst 10-second lag windows, CPU, polls, frames."""
    async with aiohttp.ClientSession() as http, Viewers(base.replace("http", "ws") + "/ws", viewers) as watching:
        start_live = (await snapshot(http, base))["live"]
        cpu0, t0 = _proc_cpu_s(agent.proc.pid), time.monotonic()
        waited0 = _run_delay_s(agent.proc.pid)
        p99s: list[float] = []
        maxes: list[float] = []
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(min(10.0, seconds - (time.monotonic() - t0)) or 0.01)
            lag = (await snapshot(http, base))["live"]["loop_lag_recent_ms"]
            p99s.append(lag["p99"])
            maxes.append(lag["max"])
        elapsed = time.monotonic() - t0
        cpu = _proc_cpu_s(agent.proc.pid) - cpu0
        waited = _run_delay_s(agent.proc.pid) - waited0
        end_live = (await snapshot(http, base))["live"]
        push = end_live["web"]
        frames = watching.frames
        return {
            "viewers": viewers,
            "seconds": round(elapsed, 1),
            "loop_lag_p99_ms": max(p99s),
            "loop_lag_max_ms": max(maxes),
            "agent_cpu_pct": round(100 * cpu / elapsed, 1),
            "loop_waited_for_cpu_ms_per_s": round(1000 * waited / elapsed, 1),
            "polls_per_s": round((end_live["meta"]["polls"] - start_live["meta"]["polls"]) / elapsed, 2),
            "frames_per_viewer_per_s": round(min(frames) / elapsed, 2) if frames else None,
            "frame_kib": round(watching.bytes / max(1, sum(frames)) / 1024, 1) if frames else None,
            "viewers_connected": sum(1 for f in frames if f > 0),
            "push_ms_p50": push["push_ms_p50"],
            "push_ms_max": push["push_ms_max"],
        }


async def measure(workdir: Path, viewers: int, seconds: float, warmup: float) -> dict[str, Any]:
    with simulator_process(workdir / "sim"), mosquitto(workdir / "mq") as broker:
        port = free_port()
        web = {"enabled": True, "port": port, "max_clients": viewers + 16}
        site = agent_site(workdir / "sim" / "site.yaml", broker.port, kpi=DEMO_KPI | {"publish_interval_s": 5}, web=web)
        agent = AgentProcess(site).wait_ready()
        try:
            await asyncio.sleep(warmup)
            base = f"http://127.0.0.1:{port}"
            idle = await phase(agent, base, 0, seconds)
            loaded = await phase(agent, base, viewers, seconds)
        finally:
            code = agent.terminate()
        return {"idle": idle, "loaded": loaded, "agent_exit": code, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--viewers", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=10.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        result = asyncio.run(measure(Path(tmp), args.viewers, args.seconds, args.warmup))
    print(json.dumps(result))
    print()
    print(f"{'':<26} {'no viewer':>12} {f'{args.viewers} viewers':>12}")
    for key in result["idle"]:
        print(f"{key:<26} {result['idle'][key]!s:>12} {result['loaded'][key]!s:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
