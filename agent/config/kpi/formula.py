"""Custom KPI formulas: the syntax tree and a small recursive-descent parser (evaluated by agent.kpi.formula). No
``eval``.

Grammar (precedence low to high; ``^`` is right-associative)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | power
    power  := atom ("^" unary)?
    atom   := NUMBER | NAME | NAME "(" args? ")" | "(" expr ")"
    args   := arg ("," arg)*        arg := expr | STRING

``NAME`` is a KPI reference ``scope.kpi_name`` (e.g. ``kiln1.sec_kwh_per_t``); ``kpi("raw-mill", "load_factor")``
is the same for scope names with a hyphen. Functions:
``total("device", "point_or_role")`` (window amount of a counter or rate), ``mean("device", "point_or_role")``
(time-weighted mean of an instantaneous value), ``min``, ``max``, ``abs``, ``sqrt``. A missing value (no data, a
division by zero, sqrt of a negative) makes the result missing (None), never an exception at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<str>\"[^\"]*\")"
    r"|(?P<op>[-+*/^(),]))"
)
POINT_FUNCTIONS = frozenset({"total", "mean"})
MATH_FUNCTIONS: dict[str, tuple[int, int]] = {"min": (1, 16), "max": (1, 16), "abs": (1, 1), "sqrt": (1, 1)}


class FormulaError(ValueError):
    """A formula does not parse; the message names the position."""


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class KpiRef:
    name: str  # "scope.kpi"


@dataclass(frozen=True, slots=True)
class PointFn:
    fn: str  # "total" or "mean"
    device: str
    point: str


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Neg:
    arg: Node


Node = Num | KpiRef | PointFn | Call | BinOp | Neg


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FormulaError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        if value is not None and tok[1] != value:
            found = "end of formula" if tok[0] == "end" else repr(tok[1])
            raise FormulaError(f"expected {value!r} at position {tok[2]}, found {found}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek()[:2] == ("op", "-"):
            self.take()
            return Neg(self.unary())
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek()[:2] == ("op", "^"):
            self.take()
            return BinOp("^", base, self.unary())
        return base

    def atom(self) -> Node:
        kind, value, pos = self.take()
        if kind == "num":
            return Num(float(value))
        if kind == "op" and value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind == "name":
            if self.peek()[:2] == ("op", "("):
                return self.call(value, pos)
            if "." not in value:
                raise FormulaError(f"'{value}' at position {pos}: a KPI is named scope.kpi, e.g. kiln1.sec_kwh_per_t")
            return KpiRef(value)
        found = "end of formula" if kind == "end" else repr(value)
        raise FormulaError(f"expected a number, a KPI name, a function or '(' at position {pos}, found {found}")

    def call(self, fn: str, pos: int) -> Node:
        self.take("(")
        args: list[Node | str] = []
        if self.peek()[1] != ")":
            args.append(self.arg())
            while self.peek()[:2] == ("op", ","):
                self.take()
                args.append(self.arg())
        self.take(")")
        if fn == "kpi":  # for scopes whose names a bare reference cannot spell, e.g. kpi("raw-mill", "load_factor")
            if len(args) != 2 or not all(isinstance(a, str) for a in args):
                raise FormulaError(f'kpi() at position {pos} takes two strings: kpi("scope", "kpi_name")')
            return KpiRef(f"{args[0]}.{args[1]}")
        if fn in POINT_FUNCTIONS:
            if len(args) != 2 or not all(isinstance(a, str) for a in args):
                raise FormulaError(f'{fn}() at position {pos} takes two strings: {fn}("device", "point_or_role")')
            return PointFn(fn, str(args[0]), str(args[1]))
        if fn not in MATH_FUNCTIONS:
            known = ", ".join(sorted(POINT_FUNCTIONS | MATH_FUNCTIONS.keys() | {"kpi"}))
            raise FormulaError(f"unknown function '{fn}' at position {pos}; known: {known}")
        lo, hi = MATH_FUNCTIONS[fn]
        nodes = [a for a in args if not isinstance(a, str)]
        if len(nodes) != len(args) or not lo <= len(nodes) <= hi:
            raise FormulaError(f"{fn}() at position {pos} takes {lo}..{hi} numeric arguments")
        return Call(fn, tuple(nodes))

    def arg(self) -> Node | str:
        if self.peek()[0] == "str":
            return self.take()[1][1:-1]
        return self.expr()


def parse(text: str) -> Node:
    parser = _Parser(text)
    node = parser.expr()
    kind, value, pos = parser.peek()
    if kind != "end":
        raise FormulaError(f"unexpected {value!r} at position {pos}")
    return node


def references(node: Node) -> tuple[list[str], list[PointFn]]:
    """KPI names and point functions a formula uses (for config checks and dependency order)."""
    kpis: list[str] = []
    points: list[PointFn] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, KpiRef):
            kpis.append(n.name)
        elif isinstance(n, PointFn):
            points.append(n)
        elif isinstance(n, BinOp):
            stack.extend((n.left, n.right))
        elif isinstance(n, Neg):
            stack.append(n.arg)
        elif isinstance(n, Call):
            stack.extend(n.args)
    return kpis, points
