"""OPC UA subscribe mode: every data change the server sends becomes a sample exactly once (issue 17: with
``interval_s`` equal to the server's update period, one source second was now and then published twice and the
next one never; the source kept only the latest value per tick, and the monitored item's queue held one value).

The simulator here updates its variables every 0.25 s while the device ticks every 1 s: each tick must carry the
four changes of its second, each with its own source timestamp, none twice, none missing, each equal to the plant
model's value at that timestamp."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from agent.model import Quality
from agent.sources.opcua.source import OpcuaSource
from simulators.plant import PlantModel
from tests.integration.opcua_sim import Sim, device_config, point, running, start_sim

pytestmark = pytest.mark.e2e
STEP_S = 0.25


@pytest.fixture(scope="module")
def fast_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(tmp_path_factory.mktemp("opcua-fast"), step_s=STEP_S)
    try:
        yield s
    finally:
        s.proc.stop()


async def test_every_data_change_becomes_one_sample(fast_sim: Sim) -> None:
    name = "kiln1.coal_feed_tph"
    source = OpcuaSource(device_config(fast_sim, [point("kiln1", "coal_feed_tph")], interval_s=1.0))
    async with running(source) as run:
        await run.wait_for(lambda r: len(run.results) >= 7, 20)
    samples = [s for r in run.results[2:] for s in r.samples if s.point == name and s.quality is Quality.GOOD]
    stamps = [s.source_ts for s in samples]
    assert len(stamps) >= 16, stamps  # about four per tick
    assert all(t is not None for t in stamps)
    assert len(set(stamps)) == len(stamps), "a source timestamp published twice"
    steps = [round((b - a) / STEP_S) for a, b in itertools.pairwise(sorted(t for t in stamps if t is not None))]
    assert set(steps) == {1}, f"a change missing between two samples: steps {steps}"
    assert [s.ts for s in samples] == sorted({s.ts for s in samples})  # sample times move forward, none shared
    model = PlantModel(seed=fast_sim.seed, start=fast_sim.start, step_s=STEP_S)
    for s in samples:
        assert s.source_ts is not None
        model.advance_to(s.source_ts)
        assert s.value == model.values("kiln1")["coal_feed_tph"], s
    assert source.changes_dropped == 0
