"""Fault injection for the Modbus simulator: what to do to which request, and exact counts of what was done.

Request faults run on a schedule over the requests the simulator receives for the units the plan targets
(``units``; empty = every unit), numbered 1, 2, 3, ... in arrival order. A request gets at most one fault; when
several schedules hit the same request number the first of this list wins:

1. ``silent_units``: requests to these units are never answered (a dead slave on a shared bus). Not numbered.
2. ``drop_every=N``: every Nth request closes the connection instead of answering (Modbus TCP and RTU over TCP;
   on a serial line the request is just not answered, as a cable pull would do).
3. ``late_every=N``: every Nth request is answered ``late_s`` seconds late, with its own transaction id, so a
   client that timed out must discard the stale reply.
4. ``exception_every=N``: every Nth request answers a Modbus exception; codes cycle through ``exception_codes``
   (any of 1, 2, 3, 4, 6, 0x0A, 0x0B).
5. ``bad_byte_count_every=N``: every Nth read (function 1-4) answers with its byte count off by 2 (the frame is
   otherwise well formed: MBAP length or RTU CRC match the bytes sent).

Counter faults change the plant model at a model time: ``CounterFault("main-meter", "energy_import_kwh", at=t,
kind="reset")`` resets the meter; ``kind="near_wrap"`` moves the shown counter ``before_wrap`` below the value at
which its register (per the unit's profile) rolls over, so it wraps ``before_wrap / rate`` seconds later.

``FaultStats`` counts every request received, answered, and every fault applied, by kind and exception code.
A wrong byte count is counted when it is applied (an exception reply has no byte count to corrupt).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

ALLOWED_EXCEPTION_CODES = frozenset({1, 2, 3, 4, 6, 0x0A, 0x0B})


class Action(Enum):
    ANSWER = "answer"
    SILENT = "silent"
    DROP = "drop"
    LATE = "late"
    EXCEPTION = "exception"
    BAD_BYTE_COUNT = "bad_byte_count"


@dataclass(frozen=True, slots=True)
class CounterFault:
    device: str
    counter: str  # counter name, i.e. the role value, e.g. "energy_import_kwh"
    at: float  # model time (UNIX s) at which it happens
    kind: Literal["reset", "near_wrap"] = "reset"
    before_wrap: float = 0.0  # near_wrap: distance below the register's wrap value, in the point's unit


@dataclass(frozen=True, slots=True)
class FaultPlan:
    units: frozenset[int] = frozenset()
    silent_units: frozenset[int] = frozenset()
    drop_every: int | None = None
    late_every: int | None = None
    late_s: float = 0.0
    exception_every: int | None = None
    exception_codes: tuple[int, ...] = (4,)
    bad_byte_count_every: int | None = None
    counter_faults: tuple[CounterFault, ...] = ()

    def __post_init__(self) -> None:
        for name in ("drop_every", "late_every", "exception_every", "bad_byte_count_every"):
            n = getattr(self, name)
            if n is not None and n < 1:
                raise ValueError(f"{name} must be >= 1, got {n}")
        bad = set(self.exception_codes) - ALLOWED_EXCEPTION_CODES
        if bad or not self.exception_codes:
            raise ValueError(f"exception_codes must be some of {sorted(ALLOWED_EXCEPTION_CODES)}, got {bad or '()'}")
        if self.late_every is not None and self.late_s <= 0:
            raise ValueError("late_every needs late_s > 0")


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    number: int = 0  # the request's number in the schedule (0 = not numbered)
    exception_code: int = 0


@dataclass
class FaultStats:
    """What the simulator received and did. ``faults`` counts by action value; ``exceptions`` by code."""

    requests: int = 0  # every request frame decoded, any unit
    numbered: int = 0  # requests counted by the schedule
    answered: int = 0  # replies sent (normal, exception, late or bad byte count)
    faults: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[int] = field(default_factory=Counter)  # injected exception replies by code
    illegal_address: int = 0  # ILLEGAL DATA ADDRESS answered because the read left the image (not injected)
    unknown_unit: int = 0  # requests to a unit id nobody serves
    counter_faults: int = 0


class FaultSchedule:
    """Decides each request's fate from a plan and counts it."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self.plan = plan or FaultPlan()
        self.stats = FaultStats()
        self._exc_index = 0

    def decide(self, unit: int, function_code: int) -> Decision:
        plan, stats = self.plan, self.stats
        stats.requests += 1
        if unit in plan.silent_units:
            stats.faults[Action.SILENT.value] += 1
            return Decision(Action.SILENT)
        if plan.units and unit not in plan.units:
            return Decision(Action.ANSWER)
        stats.numbered += 1
        n = stats.numbered
        decision = Decision(Action.ANSWER, n)
        if plan.drop_every and n % plan.drop_every == 0:
            decision = Decision(Action.DROP, n)
        elif plan.late_every and n % plan.late_every == 0:
            decision = Decision(Action.LATE, n)
        elif plan.exception_every and n % plan.exception_every == 0:
            code = plan.exception_codes[self._exc_index % len(plan.exception_codes)]
            self._exc_index += 1
            stats.exceptions[code] += 1
            decision = Decision(Action.EXCEPTION, n, code)
        elif plan.bad_byte_count_every and function_code in (1, 2, 3, 4) and n % plan.bad_byte_count_every == 0:
            decision = Decision(Action.BAD_BYTE_COUNT, n)
        if decision.action not in (Action.ANSWER, Action.BAD_BYTE_COUNT):  # the server counts it when applied
            stats.faults[decision.action.value] += 1
        return decision
