"""``probe --orders``: rank the four byte/word orders of a multi-register point, most likely first.

A gauge (power, voltage) is ranked by plausibility of one reading (``decode_all_orders``). A counter (a role
that is a counter, or a total's unit: kWh, kvarh, t, m3, ...) is ranked by continuity between two polls: in the
right order the registers that change between polls are the least significant ones, so the value moves forward
by a little; in a wrong order the same change lands in high bytes, so the value jumps by 256, 65536 or 2^24 times
as much, or backwards. Magnitude cannot tell: a uint32 energy counter near 2^32 in ABCD order looks implausibly
large, and the right order ranked last before this. A float counter's low bytes can land in another order's
mantissa and move it by very little, so for floats continuity only demotes the orders that went backwards and
plausibility ranks the rest. A counter that did not move between the polls is ranked by plausibility alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config.profile import ByteOrder, DataType, PointConfig
from agent.model import COUNTER_ROLES, Value
from agent.sources.modbus.codec import OrderGuess, decode_all_orders

TOTAL_UNITS = frozenset({"kwh", "mwh", "kvarh", "mvarh", "t", "kt", "m3", "nm3", "gj", "mj", "h"})
_FLOATS = frozenset({DataType.FLOAT16, DataType.FLOAT32, DataType.FLOAT64})


@dataclass(frozen=True, slots=True)
class RankedOrder:
    order: ByteOrder
    value: Value
    delta: float | None  # change since the first poll (counters only)


def is_counter(point: PointConfig) -> bool:
    """A cumulative total: its role is a counter role, or its unit is a total's unit."""
    return point.role in COUNTER_ROLES or point.unit.strip().casefold() in TOTAL_UNITS


def _number(value: Value) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _guesses(registers: Sequence[int], point: PointConfig) -> list[OrderGuess]:
    return decode_all_orders(registers, point.type, scale=point.scale, offset=point.offset, value_range=point.range)


def rank_orders(
    point: PointConfig, now: Sequence[int], before: Sequence[int] | None = None
) -> tuple[list[RankedOrder], str]:
    """The four orders of ``point``'s registers ``now``, most likely first, and how they were ranked.

    ``before`` is the same point's registers from an earlier poll; with it a counter is ranked by continuity.
    """
    guesses = _guesses(now, point)
    if before is None or not is_counter(point):
        return [RankedOrder(g.order, g.value, None) for g in guesses], "plausibility"
    earlier = {g.order: _number(g.value) for g in _guesses(before, point)}
    deltas: dict[ByteOrder, float | None] = {}
    for g in guesses:
        first, second = earlier[g.order], _number(g.value)
        deltas[g.order] = None if first is None or second is None else second - first
    if all(d == 0 for d in deltas.values()):
        return [RankedOrder(g.order, g.value, 0.0) for g in guesses], "plausibility: the counter did not move"
    floats = point.type in _FLOATS

    def key(pair: tuple[int, OrderGuess]) -> tuple[int, float, int]:
        index, g = pair  # index: the plausibility rank, for ties
        delta = deltas[g.order]
        if delta is None:
            return 2, 0.0, index
        if delta < 0:
            return 1, 0.0, index
        return 0, 0.0 if floats else delta, index

    ranked = sorted(enumerate(guesses), key=key)
    return [RankedOrder(g.order, g.value, deltas[g.order]) for _, g in ranked], "continuity between two polls"


def describe(ranked: list[RankedOrder], how: str, configured: ByteOrder) -> str:
    """``orders: ABCD=42949672.95 (+0.35), CDAB=... (now ABCD; ranked by continuity between two polls)``; for a
    gauge ``orders: CDAB=231.5, ... (now CDAB)``."""
    parts = []
    for r in ranked:
        moved = "" if r.delta is None or how != "continuity between two polls" else f" ({r.delta:+g})"
        parts.append(f"{r.order.value}={r.value}{moved}")
    ranked_by = "" if how == "plausibility" else f"; ranked by {how}"
    return "orders: " + ", ".join(parts) + f" (now {configured.value}{ranked_by})"
