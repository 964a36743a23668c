"""Fifty browsers watching the page do not delay polling: the agent (a process, polling the simulated plant every
second) is measured with no viewer and then with 50 WebSocket viewers taking every frame. The loop lag of the
agent's own monitor (a 0.25 s sleeper) stays below a generous bound, every device is still polled every second
as often as with no viewer, and every viewer gets the live frame about once a second. Figures of a longer run are in
tests/benchmarks/web_viewers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.web_viewers import measure

pytestmark = pytest.mark.e2e

VIEWERS = 50


@pytest.mark.long(seconds=37)  # 50 viewers, then none, for the same span each
async def test_fifty_viewers_leave_the_event_loop_lag_unchanged(tmp_path: Path) -> None:
    result = await measure(tmp_path, VIEWERS, seconds=15.0, warmup=5.0)
    idle, loaded = result["idle"], result["loaded"]
    assert result["agent_exit"] == 0
    assert loaded["viewers_connected"] == VIEWERS
    assert loaded["frames_per_viewer_per_s"] >= 0.8, loaded  # pushed about every second to each of them
    # Generous and absolute: this shared 2-core machine moves the lag of any process by tens, at times a couple of
    # hundred ms, on its own (idle and loaded phases are not side by side); a loop stalled by the page shows as
    # seconds. Below half the poll interval, every poll keeps its slot. The idle/loaded comparison is the benchmark's.
    assert loaded["loop_lag_max_ms"] < 500.0, result
    # CPU time does not depend on what else the machine runs: 50 viewers cost the agent under 0.1 s a second
    assert loaded["agent_cpu_pct"] - idle["agent_cpu_pct"] < 10.0, result
    assert idle["polls_per_s"] >= 0.9 * 11, result  # 11 devices, every second
    assert loaded["polls_per_s"] >= 0.9 * idle["polls_per_s"], result
