"""SqliteSpool against a model, with crash and restart rules (after Vector's disk-buffer model tests).

A crash copies the database and its WAL as they are on disk at that instant (what a kill -9 leaves: the kernel
keeps every write() the process made) and opens the copy; a restart closes and reopens cleanly. The model says
which records must be there, in which order, and how many of each kind were dropped; it drops the way the spool
promises (oldest status, then oldest samples, then oldest KPIs).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent.config.spool import SpoolConfig
from agent.spool.base import DROP_ORDER, KINDS, RECORD_OVERHEAD_BYTES, Kind
from agent.spool.sqlite import SqliteSpool

MAX_BYTES = 1 << 16  # the smallest bound the config accepts
MAX_AGE_S = 100.0


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class ModelRecord:
    topic: str
    payload: bytes
    kind: Kind
    ts: float

    @property
    def size(self) -> int:
        return len(self.topic.encode()) + len(self.payload) + RECORD_OVERHEAD_BYTES


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="spool-machine-"))
        self.generation = 0
        self.clock = FakeClock()
        self.config = SpoolConfig(max_bytes=MAX_BYTES, max_age_s=MAX_AGE_S, fsync_interval_ms=0)
        self.spool = SqliteSpool.open(self._path(), self.config, self.clock)
        self.model: dict[int, ModelRecord] = {}
        self.dropped_full = dict.fromkeys(KINDS, 0)
        self.dropped_expired = dict.fromkeys(KINDS, 0)
        self.last_id = 0

    def _path(self) -> Path:
        return self.tmp / f"gen{self.generation}" / "spool.sqlite"

    def teardown(self) -> None:
        self.spool.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        kind=st.sampled_from(KINDS),
        size=st.integers(0, 20000),
        device=st.sampled_from(["kiln1", "boiler-2", "电表3"]),
    )
    def append(self, kind: Kind, size: int, device: str) -> None:
        topic = f"plant/s1/gw1/{device}/{kind}"
        payload = bytes([len(self.model) % 251]) * size
        record = ModelRecord(topic, payload, kind, self.clock.now)
        excess = sum(r.size for r in self.model.values()) + record.size - MAX_BYTES
        for drop_kind in DROP_ORDER:
            for rid in [i for i, r in self.model.items() if r.kind == drop_kind]:
                if excess <= 0:
                    break
                excess -= self.model.pop(rid).size
                self.dropped_full[drop_kind] += 1
        stored = self.spool.append(topic, payload, kind, seq=rid_hint(self.last_id))
        assert stored is not None and stored > self.last_id, "ids must grow across restarts"
        rid = stored
        self.last_id = rid
        self.model[rid] = record

    @precondition(lambda self: bool(self.model))
    @rule(n=st.integers(1, 20), keep_every=st.integers(1, 4))
    def read_and_ack(self, n: int, keep_every: int) -> None:
        got = self.spool.read(0, n)
        assert [r.id for r in got] == list(self.model)[:n]
        acked = [r.id for i, r in enumerate(got) if i % keep_every == 0]
        self.spool.ack(acked)
        for rid in acked:
            del self.model[rid]

    @rule(offset=st.integers(0, 5))
    def ack_gone_is_noop(self, offset: int) -> None:
        gone = [i for i in range(1, self.last_id + 1) if i not in self.model][-1 - offset :]
        self.spool.ack(gone)

    @rule(dt=st.floats(0.0, 30.0))
    def advance_clock_and_expire(self, dt: float) -> None:
        self.clock.now += dt
        self.spool.expire()
        for rid in [i for i, r in self.model.items() if r.ts < self.clock.now - MAX_AGE_S]:
            self.dropped_expired[self.model.pop(rid).kind] += 1

    @rule()
    def crash(self) -> None:
        src = self._path()
        self.generation += 1
        dst = self._path()
        dst.parent.mkdir(parents=True)
        for suffix in ("", "-wal"):
            if Path(f"{src}{suffix}").exists():
                shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
        self.spool.close()  # the copy is what the crash left; the original is abandoned
        self.spool = SqliteSpool.open(dst, self.config, self.clock)

    @rule()
    def restart(self) -> None:
        self.spool.close()
        self.spool = SqliteSpool.open(self._path(), self.config, self.clock)

    @invariant()
    def matches_model(self) -> None:
        stats = self.spool.stats()
        assert stats.depth == len(self.model)
        assert stats.bytes == sum(r.size for r in self.model.values())
        assert stats.bytes <= MAX_BYTES
        assert stats.dropped_full == self.dropped_full
        assert stats.dropped_expired == self.dropped_expired
        assert self.spool.last_id() == self.last_id
        got = self.spool.read(0, len(self.model) + 1)
        assert [(r.id, r.topic, r.payload, r.kind) for r in got] == [
            (i, r.topic, r.payload, r.kind) for i, r in self.model.items()
        ]


def rid_hint(last_id: int) -> int:
    return last_id + 1


SpoolMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=60, deadline=None)
TestSpoolMachine = pytest.mark.long(seconds=6)(SpoolMachine.TestCase)  # long: a stateful property run of half a minute
