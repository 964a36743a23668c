"""The group commit window (``spool.group_commit_ms``): polls that finish within the window of the first share one
spool transaction; nothing is offered to the sink before its transaction committed (durable first); a window open
when the agent stops is committed, not lost. Agent._emit runs against a real SqliteSpool and a recording sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from agent.model import PollResult, Quality, Sample
from agent.runtime.agent import Agent
from agent.runtime.parts import Parts, topics_of
from agent.sinks.mqtt import MqttSink
from agent.spool.base import NewRecord
from agent.spool.sqlite import SqliteSpool


class RecordingSink:
    """Records each offer with the number of spool transactions committed before it."""

    def __init__(self, spool: RecordingSpool) -> None:
        self.spool = spool
        self.offers: list[tuple[int, int]] = []  # (record id, transactions committed when offered)

    def offer(self, record_id: int, topic: str, payload: bytes) -> None:
        self.offers.append((record_id, len(self.spool.transactions)))


class RecordingSpool(SqliteSpool):
    transactions: list[int]

    def append_many(self, items: Sequence[NewRecord]) -> list[int | None]:
        ids = super().append_many(items)
        self.transactions.append(len(items))
        return ids


def _agent(tmp_path: Path, group_commit_ms: float) -> tuple[Agent, RecordingSpool, RecordingSink]:
    site = tmp_path / "site.yaml"
    site.write_text(f"site: s\ngateway: g\nstate_dir: state\nspool:\n  group_commit_ms: {group_commit_ms}\n")
    agent = Agent(site, install_signal_handlers=False)
    spool = RecordingSpool.open(tmp_path / "spool.sqlite", agent.loaded.site.spool)
    assert isinstance(spool, RecordingSpool)  # open() is a classmethod: it builds the subclass
    spool.transactions = []
    sink = RecordingSink(spool)
    agent.parts = Parts(spool, cast(MqttSink, cast(Any, sink)), None, topics_of(agent.loaded), 60.0)
    return agent, spool, sink


def _poll(device: str) -> PollResult:
    now = time.time()
    sample = Sample(device, "p", 1.0, "kW", Quality.GOOD, now)
    return PollResult(device=device, ts=now, duration_s=0.001, samples=(sample,), requests=1)


async def _emit_staggered(agent: Agent, devices: list[str], gap_s: float) -> None:
    async def one(k: int, device: str) -> None:
        await asyncio.sleep(k * gap_s)
        await agent._emit(_poll(device))

    await asyncio.gather(*(one(k, d) for k, d in enumerate(devices)))


async def test_polls_within_the_window_share_one_transaction_and_are_offered_after_it(tmp_path: Path) -> None:
    agent, spool, sink = _agent(tmp_path, group_commit_ms=50)
    try:
        await _emit_staggered(agent, ["a", "b", "c"], gap_s=0.005)
        assert spool.transactions == [3]
        assert [n for _, n in sink.offers] == [1, 1, 1], "each offered only after its transaction"
        assert [r.seq for r in spool.read(0, 10)] == [1, 2, 3]
    finally:
        spool.close()


async def test_window_zero_commits_the_polls_of_one_loop_turn_together_and_no_more(tmp_path: Path) -> None:
    agent, spool, sink = _agent(tmp_path, group_commit_ms=0)
    try:
        await asyncio.gather(agent._emit(_poll("a")), agent._emit(_poll("b")))  # both finish in one turn
        await agent._emit(_poll("c"))  # after that turn's commit
        assert spool.transactions == [2, 1]
        assert [n for _, n in sink.offers] == [1, 1, 2]
    finally:
        spool.close()


async def test_a_window_open_when_the_source_is_cancelled_is_committed(tmp_path: Path) -> None:
    agent, spool, sink = _agent(tmp_path, group_commit_ms=100)
    try:
        first = asyncio.create_task(agent._emit(_poll("a")))
        await asyncio.sleep(0.01)
        await agent._emit(_poll("b"))  # joins the open window, returns at once
        assert spool.transactions == []
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert spool.transactions == [2]
        assert len(sink.offers) == 2
    finally:
        spool.close()
