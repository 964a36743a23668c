"""The custom-KPI formula parser: precedence, functions, references, errors, and no code execution."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.kpi.formula import FormulaError, KpiRef, PointFn, evaluate, parse, references


def value(text: str, env: dict[str, float] | None = None) -> float | None:
    env = env or {}

    def resolve(ref: KpiRef | PointFn) -> float | None:
        key = ref.name if isinstance(ref, KpiRef) else f"{ref.fn}:{ref.device}:{ref.point}"
        return env.get(key)

    return evaluate(parse(text), resolve)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("-2 ^ 2", -4.0),
        ("10 / 4 - 1", 1.5),
        ("max(1, 5, 3) + min(4, 2)", 7.0),
        ("sqrt(16) + abs(-2)", 6.0),
        ("1.5e3 / .5", 3000.0),
    ],
)
def test_arithmetic(text: str, want: float) -> None:
    assert value(text) == pytest.approx(want)


def test_references_resolve_kpis_and_points() -> None:
    env = {"kiln1.sec_kwh_per_t": 30.0, "total:main-meter:energy_import_kwh": 1200.0}
    assert value('kiln1.sec_kwh_per_t * 2 + total("main-meter", "energy_import_kwh")', env) == 1260.0
    kpis, points = references(parse('a.b + mean("boiler1", "steam_pressure_mpa")'))
    assert kpis == ["a.b"] and points == [PointFn("mean", "boiler1", "steam_pressure_mpa")]
    assert value('kpi("raw-mill", "load_factor") * 100', {"raw-mill.load_factor": 0.8}) == pytest.approx(80.0)


@pytest.mark.parametrize("text", ["1 / 0", "sqrt(-1)", "x.y + 1", "(-8) ^ 0.5"])
def test_undefined_or_missing_is_none_not_an_exception(text: str) -> None:
    assert value(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 +", "position 4"),
        ("foo(1)", "unknown function 'foo'"),
        ("__import__('os')", "unexpected character"),
        ("total(1, 2)", "takes two strings"),
        ("x + 1", "scope.kpi"),
        ("(1 + 2", "expected ')'"),
        ("1 2", "unexpected '2'"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_formula_error(text: str) -> None:
    try:
        node = parse(text)
    except FormulaError:
        return
    evaluate(node, lambda ref: 1.0)


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0.5, 1e6))
def test_matches_python_arithmetic(a: float, b: float, c: float) -> None:
    assert value(f"({a!r}) + ({b!r}) * ({c!r}) - ({a!r}) / ({c!r})") == pytest.approx(a + b * c - a / c)
