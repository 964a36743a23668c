"""The group commit window (``spool.group_commit_ms``): polls that finish within the window of the first share one
spool transaction; nothing is offered to the sink before its transaction committed (durable first); no source waits
for the window; a window open when the agent stops is committed, not lost. Agent._emit and the agent's commit task
run against a real SqliteSpool and a recording sink."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

from agent.model import PollResult, Quality, Sample
from agent.runtime.agent import Agent
from agent.runtime.parts import Parts, topics_of
from agent.sinks.mqtt import MqttSink
from agent.spool.base import NewRecord
from agent.spool.sqlite import SqliteSpool


class RecordingSpool(SqliteSpool):
    transactions: list[int]
    committed: asyncio.Event

    def append_many(self, items: Sequence[NewRecord]) -> list[int | None]:
        ids = super().append_many(items)
        self.transactions.append(len(items))
        self.committed.set()
        return ids

    async def wait_transactions(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.transactions) < n:
                self.committed.clear()
                await self.committed.wait()


class RecordingSink:
    """Records each offer with the number of spool transactions committed before it."""

    def __init__(self, spool: RecordingSpool) -> None:
        self.spool = spool
        self.offers: list[tuple[int, int]] = []  # (record id, transactions committed when offered)

    def offer(self, record_id: int, topic: str, payload: bytes) -> None:
        self.offers.append((record_id, len(self.spool.transactions)))

    def wake(self) -> None:
        pass

    async def flush(self, timeout_s: float) -> bool:
        return True


@contextlib.asynccontextmanager
async def running(tmp_path: Path, group_commit_ms: float) -> AsyncIterator[tuple[Agent, RecordingSpool, RecordingSink]]:
    """An agent with its spool, a recording sink and its group commit task (no sources: the test emits)."""
    site = tmp_path / "site.yaml"
    site.write_text(f"site: s\ngateway: g\nstate_dir: state\nspool:\n  group_commit_ms: {group_commit_ms}\n")
    agent = Agent(site, install_signal_handlers=False)
    spool = RecordingSpool.open(tmp_path / "spool.sqlite", agent.loaded.site.spool)
    assert isinstance(spool, RecordingSpool)  # open() is a classmethod: it builds the subclass
    spool.transactions = []
    spool.committed = asyncio.Event()
    sink = RecordingSink(spool)
    agent.parts = Parts(spool, cast(MqttSink, cast(Any, sink)), None, topics_of(agent.loaded), 60.0)
    committer = asyncio.create_task(agent._commit_loop())
    agent._other_tasks.append(committer)
    try:
        yield agent, spool, sink
    finally:
        committer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await committer
        spool.close()


def _poll(device: str) -> PollResult:
    now = time.time()
    sample = Sample(device, "p", 1.0, "kW", Quality.GOOD, now)
    return PollResult(device=device, ts=now, duration_s=0.001, reads=(sample,), requests=1)


async def test_polls_within_the_window_share_one_transaction_and_are_offered_after_it(tmp_path: Path) -> None:
    async with running(tmp_path, group_commit_ms=100) as (agent, spool, sink):
        for device in ("a", "b", "c"):
            await agent._emit(_poll(device))
            await asyncio.sleep(0)  # other loop turns, within the window
        assert spool.transactions == [], "no source waits for the window: all three are in it"
        await spool.wait_transactions(1)
        assert spool.transactions == [3]
        assert [n for _, n in sink.offers] == [1, 1, 1], "each offered only after its transaction"
        assert [r.seq for r in spool.read(0, 10)] == [1, 2, 3]
        await agent._emit(_poll("d"))  # a new window
        await spool.wait_transactions(2)
        assert spool.transactions == [3, 1]


async def test_window_zero_commits_the_polls_of_one_loop_turn_together_and_no_more(tmp_path: Path) -> None:
    async with running(tmp_path, group_commit_ms=0) as (agent, spool, sink):
        await asyncio.gather(agent._emit(_poll("a")), agent._emit(_poll("b")))  # both finish in one turn
        await spool.wait_transactions(1)
        await agent._emit(_poll("c"))  # after that turn's commit
        await spool.wait_transactions(2)
        assert spool.transactions == [2, 1]
        assert [n for _, n in sink.offers] == [1, 1, 2]


async def test_a_window_open_when_the_agent_stops_is_committed(tmp_path: Path) -> None:
    async with running(tmp_path, group_commit_ms=100) as (agent, spool, sink):
        await agent._emit(_poll("a"))
        await agent._emit(_poll("b"))
        assert spool.transactions == []
        await agent._shutdown()  # sources stopped: what the window holds is committed, then offered
        assert spool.transactions == [2]
        assert len(sink.offers) == 2


async def test_the_window_closes_once_no_poll_is_in_progress_and_not_before(tmp_path: Path) -> None:
    """A poll step's burst: three polls in progress (as the Modbus sources report them); the window, 100 ms here,
    closes as soon as the last is in, with all three in one transaction; one still in progress holds it open."""

    async def turns(n: int = 3) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async with running(tmp_path, group_commit_ms=100) as (agent, spool, sink):
        for _ in range(3):
            agent.polling.start()
        for device in ("a", "b", "c"):
            await turns()  # replies come in over a few loop turns
            await agent._emit(_poll(device))
            agent.polling.done()
            if device != "c":
                assert spool.transactions == [], "polls still in progress: the window stays open"
        await turns()
        assert spool.transactions == [3], "committed at the end of the burst, not after the window"
        assert [n for _, n in sink.offers] == [1, 1, 1]

        agent.polling.start()
        agent.polling.start()
        await agent._emit(_poll("d"))
        agent.polling.done()  # "e" is still in progress
        await turns(10)
        assert spool.transactions == [3], "a poll in progress holds the window open"
        await spool.wait_transactions(2)  # until the window's end
        assert spool.transactions == [3, 1]
        agent.polling.done()
