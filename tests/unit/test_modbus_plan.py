"""Read plan: coalescing limits, address base, offsets, ILLEGAL DATA ADDRESS splits, and minimality against a
brute-force search over every grouping of the points (Hypothesis); the slots the plan runs in (schedule.py); and
the read-only guarantee (no write call anywhere in agent/)."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.profile import ProfileConfig
from agent.config.site import ModbusDeviceConfig
from agent.errors import ConfigError
from agent.sources.modbus.plan import (
    Limits,
    build_read_plan,
    feasible,
    minimum_requests,
    split_request,
    sweep,
)
from agent.sources.modbus.schedule import BACKOFF_AFTER, BACKOFF_CAP_S, NextSlot, first_slot, next_slot, realign

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"


def profile(points: list[dict[str, Any]], **kw: Any) -> ProfileConfig:
    return ProfileConfig.model_validate({"profile": "t", "address_base": 0, "points": points, **kw})


def device(**kw: Any) -> ModbusDeviceConfig:
    return ModbusDeviceConfig.model_validate({"name": "dev1", "profile": "t", "host": "127.0.0.1", **kw})


def hr(name: str, address: int, type_: str = "uint16", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "holding_register", "address": address, "type": type_, **kw}


def test_contiguous_points_are_one_request_with_offsets() -> None:
    plan = build_read_plan(profile([hr(f"v{i}", i * 2, "float32") for i in range(20)]), device())
    assert [(r.function, r.start, r.count) for r in plan.requests] == [(3, 0, 40)]
    assert [p.offset for p in plan.requests[0].points] == list(range(0, 40, 2))
    assert plan.minimum == 1 and plan.requests[0].gap == 0


def test_address_base_one_shifts_to_protocol_addresses() -> None:
    plan = build_read_plan(profile([hr("a", 1), hr("b", 40001 - 40000 + 1)], address_base=1), device())
    assert [(r.start, r.count) for r in plan.requests] == [(0, 2)]
    with pytest.raises(ConfigError, match="address 0 does not exist when address_base is 1"):
        build_read_plan(profile([hr("a", 0)], address_base=1), device())


def test_gap_limit_splits_and_gaps_are_reported() -> None:
    points = [hr("a", 0), hr("b", 5), hr("c", 20)]
    plan = build_read_plan(profile(points, max_gap=4), device())
    assert [(r.start, r.count, r.gap) for r in plan.requests] == [(0, 6, 4), (20, 1, 0)]
    # the device overrides the profile
    plan = build_read_plan(profile(points, max_gap=4), device(max_gap=20))
    assert [(r.start, r.count) for r in plan.requests] == [(0, 21)]
    plan = build_read_plan(profile(points, max_gap=4), device(max_gap=0))
    assert len(plan.requests) == 3


def test_size_limits_per_table_and_device_override() -> None:
    regs = [hr(f"r{i}", i) for i in range(300)]
    plan = build_read_plan(profile(regs), device())
    assert [r.count for r in plan.requests] == [125, 125, 50]
    plan = build_read_plan(profile(regs, max_registers_per_request=100), device(max_registers_per_request=60))
    assert [r.count for r in plan.requests] == [60] * 5
    coils = [{"name": f"c{i}", "kind": "coil", "address": i, "type": "bool"} for i in range(2500)]
    plan = build_read_plan(profile(coils), device())
    assert [(r.function, r.count) for r in plan.requests] == [(1, 2000), (1, 500)]


def test_tables_are_planned_separately_and_every_point_is_planned_once() -> None:
    points = [
        hr("h", 0),
        {"name": "i", "kind": "input_register", "address": 0, "type": "int32"},
        {"name": "d", "kind": "discrete_input", "address": 3, "type": "bool"},
        {"name": "s", "kind": "holding_register", "address": 1, "type": "bit", "bit": 3},
        {"name": "s2", "kind": "holding_register", "address": 1, "type": "uint8_low"},
    ]
    plan = build_read_plan(profile(points), device())
    assert sorted(r.function for r in plan.requests) == [2, 3, 4]
    names = [p.name for r in plan.requests for p in r.points]
    assert sorted(names) == sorted(plan.point_names)


def test_a_point_wider_than_a_request_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="spans 20 registers, more than one request may read"):
        build_read_plan(profile([hr("sn", 0, "string", length=20)]), device(max_registers_per_request=10))


def test_split_goes_to_gap_free_runs_then_single_points() -> None:
    plan = build_read_plan(profile([hr("a", 0, "uint32"), hr("b", 2), hr("c", 6), hr("d", 7)]), device())
    [request] = plan.requests
    runs = split_request(request)
    assert [(r.start, r.count, [p.name for p in r.points]) for r in runs] == [(0, 3, ["a", "b"]), (6, 2, ["c", "d"])]
    singles = split_request(runs[0])
    assert [(r.start, r.count) for r in singles] == [(0, 2), (2, 1)]
    assert split_request(singles[0]) == [singles[0]]
    assert all(p.offset == 0 for r in singles for p in r.points)


# --- minimality -----------------------------------------------------------------------------------------------


def set_partitions(items: list[int]) -> Any:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k in range(len(rest) + 1):
        for chosen in combinations(rest, k):
            remaining = [x for x in rest if x not in chosen]
            for tail in set_partitions(remaining):
                yield [[first, *chosen], *tail]


def brute_force_minimum(spans: list[tuple[int, int]], limits: Limits) -> int:
    """Fewest groups over EVERY grouping (not only runs of neighbours). A group is one read from its first start to
    its last end; registers of any configured point inside it are not 'unused', so the gap rule is checked
    against all points of the table."""
    covered = {r for s, e in spans for r in range(s, e)}

    def ok(group: list[int]) -> bool:
        start = min(spans[i][0] for i in group)
        end = max(spans[i][1] for i in group)
        if end - start > limits.max_count:
            return False
        run = 0
        for r in range(start, end):
            run = 0 if r in covered else run + 1
            if run > limits.max_gap:
                return False
        return True

    return min(len(p) for p in set_partitions(list(range(len(spans)))) if all(ok(g) for g in p))


layouts = st.lists(st.tuples(st.integers(0, 40), st.sampled_from([1, 1, 2, 2, 4, 6])), min_size=1, max_size=7)


@settings(max_examples=150, deadline=None)
@given(layout=layouts, max_count=st.integers(4, 20), max_gap=st.integers(0, 6))
def test_greedy_sweep_equals_brute_force_minimum(layout: list[tuple[int, int]], max_count: int, max_gap: int) -> None:
    spans = sorted((a, a + w) for a, w in layout if w <= max_count)
    if not spans:
        return
    limits = Limits(max_count, max_gap)
    groups = sweep(spans, limits)
    assert all(feasible([spans[i] for i in g], limits) for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(len(spans)))
    assert len(groups) == brute_force_minimum(spans, limits) == minimum_requests(spans, limits)


@settings(max_examples=100, deadline=None)
@given(
    layout=st.lists(st.tuples(st.integers(0, 400), st.sampled_from([1, 2, 4])), min_size=1, max_size=40),
    max_count=st.integers(4, 125),
    max_gap=st.integers(0, 20),
)
def test_greedy_sweep_equals_dynamic_programming_on_larger_layouts(
    layout: list[tuple[int, int]], max_count: int, max_gap: int
) -> None:
    spans = sorted((a, a + w) for a, w in layout)
    limits = Limits(max_count, max_gap)
    assert len(sweep(spans, limits)) == minimum_requests(spans, limits)


def test_agent_code_never_calls_a_modbus_write() -> None:
    """Read-only towards plant equipment: no write function of pymodbus (or of anything) is called in agent/."""
    pattern = re.compile(r"\b(write_coils?|write_registers?|mask_write\w*|readwrite\w*|write_file_record)\s*\(")
    offenders = [
        f"{path.relative_to(AGENT_DIR.parent)}:{n}: {line.strip()}"
        for path in sorted(AGENT_DIR.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
    assert pattern.search("client.write_registers(0, [1])") and pattern.search("c.readwrite_registers(")


# --- when the plan runs: wall-clock slots, skipped slots, backoff -----------------------------------------------


def test_slots_are_aligned_to_multiples_of_the_interval() -> None:
    assert first_slot(1000.3, 1.0) == 1001.0
    assert first_slot(1000.0, 1.0) == 1000.0
    assert first_slot(1007.0, 15.0) == 1020.0
    assert next_slot(1001.0, 1001.2, 1.0, 0) == NextSlot(1002.0, 0, 0)
    assert next_slot(1020.0, 1020.0, 15.0, 0) == NextSlot(1035.0, 0, 0)


def test_an_overrun_skips_and_counts_the_missed_slots_instead_of_bursting() -> None:
    assert next_slot(1001.0, 1003.5, 1.0, 0) == NextSlot(1004.0, 2, 0)
    assert next_slot(1000.0, 1005.0, 5.0, 0) == NextSlot(1005.0, 0, 0)  # finished right on the next slot
    assert next_slot(1000.0, 1005.5, 5.0, 0) == NextSlot(1010.0, 1, 0)


def test_backoff_doubles_after_the_threshold_and_is_capped() -> None:
    at, gaps = 1000.0, []
    for failures in range(1, 14):
        step = next_slot(at, at + 0.2, 1.0, failures)
        gaps.append(step.at - at)
        assert step.backoff_skipped == step.at - at - 1 and step.missed == 0
        at = step.at
    assert gaps[: BACKOFF_AFTER - 1] == [1.0] * (BACKOFF_AFTER - 1)
    assert gaps[BACKOFF_AFTER - 1 : BACKOFF_AFTER + 4] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(gaps) == BACKOFF_CAP_S
    # an interval longer than the cap is never shortened by backoff
    assert next_slot(0.0, 1.0, 600.0, 10).at == 600.0


def test_realign_only_when_the_clock_was_set_back() -> None:
    assert realign(1002.0, 1001.5, 1.0, 0) == 1002.0
    assert realign(5000.0, 1001.5, 1.0, 0) == 1002.0  # set back by an hour
    assert realign(1016.0, 1001.5, 1.0, BACKOFF_AFTER + 3) == 1016.0  # a legitimate backoff wait
    assert realign(1100.0, 1001.5, 1.0, BACKOFF_AFTER + 3) == 1002.0


def test_a_poll_done_just_before_its_slot_is_not_taken_for_a_clock_step() -> None:
    """Woken 0.5 ms before slot 1001 (the timers' early wake) and polled at once: the next slot, 1002, is one
    interval and 0.5 ms ahead. Taken for a clock set back, slot 1001 was polled again (seen in a fresh-clone run:
    two samples of one device 1 ms apart)."""
    assert realign(1002.0, 1000.9995, 1.0, 0) == 1002.0
