"""Recovery: the simulator's server stops and restarts on the same port (its namespace index moves), and the
network freezes under a live session. Session and subscription come back within 10 s of the server being
reachable, the gap is flagged with bad samples (never interpolated), keep-alive loss is detected in bounded time,
and the server is left with exactly one session and one subscription."""

from __future__ import annotations

import asyncio
import contextlib
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.model import PollResult, Quality
from agent.sources.opcua.source import OpcuaSource
from simulators.plant import PlantModel
from tests.integration.opcua_sim import (
    Sim,
    all_good,
    device_config,
    point,
    running,
    start_sim,
    wait_status_async,
)
from tests.servers.process import free_port

pytestmark = pytest.mark.e2e  # starts the OPC UA simulator (and an agent) as processes

RECOVERY_BOUND_S = 10.0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    s = start_sim(tmp_path / "sim", fault_down_s=2.0)
    try:
        yield s
    finally:
        s.proc.stop()


def lost(result: PollResult) -> bool:
    return all(s.quality is Quality.BAD and s.reason.startswith("connection lost") for s in result.samples)


def restarted(starts: int) -> Callable[[dict[str, Any]], bool]:
    return lambda status: bool(status["starts"] == starts and status["listening"])


def server_holds(sessions: int, subscriptions: int, items: int) -> Callable[[dict[str, Any]], bool]:
    """The simulator's counts, all three from one status snapshot: the server creates monitored items one by one,
    so a snapshot taken between two of them has the session and subscription but not every item yet."""
    return lambda s: (s["sessions"], s["subscriptions"], s["monitored_items"]) == (sessions, subscriptions, items)


def assert_truth(sim: Sim, results: list[PollResult]) -> None:
    model = PlantModel(seed=sim.seed, start=sim.start, step_s=1.0)
    good = sorted((s for r in results for s in r.samples if s.quality is Quality.GOOD), key=lambda s: s.source_ts or 0)
    for s in good:
        assert s.source_ts is not None
        model.advance_to(s.source_ts)
        assert s.value == model.values("kiln1")[s.point.partition(".")[2]]


@pytest.mark.parametrize(("mode", "cycles"), [("subscribe", 2), ("poll", 1)])
async def test_server_restart_recovers_within_bound_and_flags_the_gap(sim: Sim, mode: str, cycles: int) -> None:
    points = [point("kiln1", "coal_t"), point("kiln1", "production_t")]
    source = OpcuaSource(device_config(sim, points, session_timeout_s=5, mode=mode))
    async with running(source) as run:
        await run.wait_for(all_good, 15)
        subs = 1 if mode == "subscribe" else 0
        first = await wait_status_async(sim, lambda s: s["sessions"] == 1 and s["subscriptions"] == subs)
        for cycle in range(1, cycles + 1):
            mark = len(run.results)
            sim.fault()
            fault_wall = time.time()
            gap = await run.wait_for(lost, 10, after=mark)
            back = await wait_status_async(sim, restarted(cycle + 1), 15)
            back_at = time.monotonic()
            back_wall = time.time()
            good = await run.wait_for(all_good, RECOVERY_BOUND_S + 2, after=run.results.index(gap))
            recovered_in = time.monotonic() - back_at
            print(f"cycle {cycle}: gap flagged {gap.ts - fault_wall:.2f} s; recovered {recovered_in:.2f} s after back")
            assert recovered_in < RECOVERY_BOUND_S, (
                f"cycle {cycle}: recovered {recovered_in:.1f} s after the server was back"
            )
            assert back["namespace_index"] == first["namespace_index"] + cycle  # resolved again by URI
            gap_results = run.results[run.results.index(gap) : run.results.index(good)]
            for r in gap_results:  # nothing made up for the gap: bad (connection lost) or stale (no value yet),
                for s in r.samples:  # or a point's first value from the restarted server, which can come one
                    if s.quality is Quality.GOOD:  # publish ahead of the other points' (items are made one by one)
                        assert s.source_ts is not None and s.source_ts >= back_wall - 1.5, r
                    else:
                        assert s.quality in (Quality.BAD, Quality.STALE) and s.value is None, r
            assert all(s.source_ts is not None and s.source_ts >= fault_wall - 1.5 for s in good.samples)
            assert min(s.source_ts or 0 for s in good.samples) >= back_wall - 1.5
            await wait_status_async(sim, server_holds(1, subs, len(points) * subs), 5)
        assert source.connects == cycles + 1 and source.health()[0].state == "ok"
        health = source.health()[0]  # each restart: one session lost, and the attempts that brought it back
        assert health.connection_drops == cycles
        assert health.retries == source.attempts - 1 >= cycles
    assert_truth(sim, run.results)
    await wait_status_async(sim, server_holds(0, 0, 0), 5)  # the agent's exit deleted its subscription and session


class FreezableProxy:
    """A TCP relay on loopback that can freeze (keep sockets open, pass nothing, refuse new connections)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.frozen = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FreezableProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.frozen:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._pipe(reader, up_writer))
            tg.create_task(self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                if self.frozen:  # a pulled cable: the bytes go nowhere, nobody is told
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()

    def heal(self) -> None:
        self.frozen = False
        for w in self.writers:  # the old connections died with the cable; new ones pass
            w.close()
        self.writers.clear()


async def test_network_freeze_detected_in_bounded_time_and_no_session_leaks(sim: Sim) -> None:
    async with FreezableProxy(sim.port) as proxy:
        cfg = device_config(sim, [point("kiln1", "coal_t")], session_timeout_s=60)
        cfg = cfg.model_copy(update={"endpoint": f"opc.tcp://127.0.0.1:{proxy.port}"})
        source = OpcuaSource(cfg)
        keepalive_bound = 2 * max(cfg.interval_s, 2.0) + cfg.timeout_ms / 1000 + cfg.interval_s
        async with running(source) as run:
            await run.wait_for(all_good, 15)
            await wait_status_async(sim, lambda s: s["sessions"] == 1 and s["subscriptions"] == 1)
            mark = len(run.results)
            proxy.frozen = True
            frozen_at = time.monotonic()
            await run.wait_for(lost, keepalive_bound + 2, after=mark)
            detected_in = time.monotonic() - frozen_at
            print(f"freeze detected in {detected_in:.2f} s")
            assert detected_in <= keepalive_bound, f"keep-alive loss took {detected_in:.1f} s"
            proxy.heal()
            healed_at = time.monotonic()
            await run.wait_for(all_good, RECOVERY_BOUND_S + 2, after=len(run.results))
            assert time.monotonic() - healed_at < RECOVERY_BOUND_S
            # the frozen session could not be closed then; the reconnect closed it (the server would keep it 60 s)
            await wait_status_async(sim, server_holds(1, 1, 1), 3)


CRASHING_AGENT = """
import asyncio, sys
from pathlib import Path
from agent.config.opcua import OpcuaDeviceConfig
from agent.sources.opcua.source import OpcuaSource

async def main():
    source = OpcuaSource(OpcuaDeviceConfig.model_validate_json(sys.argv[1]), state_dir=Path(sys.argv[2]))
    async def emit(result):
        if all(s.quality.value == "good" for s in result.samples):
            print("up", flush=True)
    await source.run(emit)

asyncio.run(main())
"""


async def test_session_left_by_a_killed_agent_is_closed_by_the_next_one(sim: Sim, tmp_path: Path) -> None:
    cfg = device_config(sim, [point("kiln1", "coal_t"), point("kiln1", "production_t")], session_timeout_s=120)
    state_dir = tmp_path / "state"
    argv = [sys.executable, "-c", CRASHING_AGENT, cfg.model_dump_json(), str(state_dir)]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line == b"up\n"
        await wait_status_async(sim, lambda s: s["sessions"] == 1 and s["subscriptions"] == 1)
    finally:
        proc.kill()  # SIGKILL: no CloseSession
        await proc.wait()
    token = state_dir / "opcua" / "kiln1.session.json"
    assert token.exists() and stat.S_IMODE(token.stat().st_mode) == 0o600
    orphaned = sim.status()
    assert (orphaned["sessions"], orphaned["subscriptions"]) == (1, 1)  # the server keeps it for 120 s
    source = OpcuaSource(cfg, state_dir=state_dir)
    async with running(source) as run:
        await run.wait_for(all_good, 15)
        await wait_status_async(sim, server_holds(1, 1, 2), 3)
    assert not token.exists()  # closed cleanly: nothing left to clean up
    assert (await wait_status_async(sim, lambda s: s["sessions"] == 0, 3))["subscriptions"] == 0
