"""Custom KPI formulas evaluated by walking the tree parsed by agent.config.kpi.formula (grammar there). A missing
value (no data, a division by zero, sqrt of a negative) makes the result missing (None), never an exception at run
time."""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.config.kpi.formula import MATH_FUNCTIONS as MATH_FUNCTIONS
from agent.config.kpi.formula import POINT_FUNCTIONS as POINT_FUNCTIONS
from agent.config.kpi.formula import BinOp as BinOp
from agent.config.kpi.formula import Call as Call
from agent.config.kpi.formula import FormulaError as FormulaError
from agent.config.kpi.formula import KpiRef as KpiRef
from agent.config.kpi.formula import Neg as Neg
from agent.config.kpi.formula import Node as Node
from agent.config.kpi.formula import Num as Num
from agent.config.kpi.formula import PointFn as PointFn
from agent.config.kpi.formula import parse as parse
from agent.config.kpi.formula import references as references

Resolver = Callable[[KpiRef | PointFn], float | None]


def evaluate(node: Node, resolve: Resolver) -> float | None:
    """Value of ``node``; None when any input is missing or the arithmetic is undefined."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, KpiRef | PointFn):
        return resolve(node)
    if isinstance(node, Neg):
        v = evaluate(node.arg, resolve)
        return None if v is None else -v
    if isinstance(node, BinOp):
        a = evaluate(node.left, resolve)
        b = evaluate(node.right, resolve)
        if a is None or b is None:
            return None
        return _binop(node.op, a, b)
    values = [evaluate(a, resolve) for a in node.args]
    if any(v is None for v in values):
        return None
    nums = [v for v in values if v is not None]
    if node.fn == "min":
        return min(nums)
    if node.fn == "max":
        return max(nums)
    if node.fn == "abs":
        return abs(nums[0])
    return math.sqrt(nums[0]) if nums[0] >= 0 else None


def _binop(op: str, a: float, b: float) -> float | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else None
    try:
        r = a**b
    except (OverflowError, ZeroDivisionError):
        return None
    return r if isinstance(r, float | int) and math.isfinite(r) else None
