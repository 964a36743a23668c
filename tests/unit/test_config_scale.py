"""Large profiles cost memory in proportion to their points, and little of it: 100,000 points validate within
200 MB (tests/benchmarks/bench_config.py measures the time and the process's RSS; this test keeps the per-point
cost from creeping back, deterministically, with tracemalloc)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from agent.config.load import ENV_PROFILES
from agent.runtime.compile import compile_site
from tests.benchmarks.bench_config import write_big_site

BYTES_PER_POINT = 2000  # measured 1,200; the round-trip YAML loader needed about 12,000


def _peak_bytes(folder: Path, points: int) -> int:
    site = write_big_site(folder, points)
    tracemalloc.start()
    try:
        compiled = compile_site(site)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(compiled.modbus_plans["big-meter"].point_names) == points
    return peak


@pytest.mark.long(seconds=7)  # compiles a profile of 10,000s of points, traced
def test_compiling_a_large_profile_costs_little_memory_per_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "profiles"))
    small = _peak_bytes(tmp_path, 4_000)
    large = _peak_bytes(tmp_path, 16_000)
    assert large / 16_000 < BYTES_PER_POINT
    assert large < 4.5 * small  # linear: four times the points, about four times the memory
