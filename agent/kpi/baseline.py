"""ISO 50006 style energy baseline of a line: energy = intercept + sum(coef x variable) per period, the expected
energy of each new period from the model, and the CUSUM of (actual - expected).

The model is either given (``coefficients``) or fitted by least squares on the first ``training_periods`` periods
with good coverage. A rising CUSUM means more energy than the baseline predicts; a falling one means savings.

A fitted model whose R² is below ``r2_min`` (default 0.75: the model-quality check that energy-baseline tools cite
from ISO 50006 / IPMVP practice; energy.md §4, status 2nd) publishes neither expected energy nor CUSUM: the actual
energy is published with the R² and the reason, and the fit is repeated each period on the latest
``training_periods`` good periods until it passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.config.kpi import BaselineConfig, LineConfig
from agent.kpi.channels import Term
from agent.kpi.indicators import Context
from agent.kpi.windows import WindowSpec
from agent.model import KpiValue, Quality


def solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Solve a x = b by Gaussian elimination with partial pivoting; None if singular."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-12 * max(1.0, max(abs(x) for x in m[piv][:n])):
            return None
        m[col], m[piv] = m[piv], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    return [m[i][n] / m[i][i] for i in range(n)]


@dataclass(frozen=True, slots=True)
class Model:
    coefficients: tuple[float, ...]  # intercept first
    r2: float | None
    n: int

    def predict(self, x: Sequence[float]) -> float:
        return self.coefficients[0] + sum(c * v for c, v in zip(self.coefficients[1:], x, strict=True))


def fit(xs: Sequence[Sequence[float]], ys: Sequence[float]) -> Model | None:
    """Ordinary least squares with an intercept; None if the variables are collinear or constant."""
    rows = [[1.0, *x] for x in xs]
    k = len(rows[0])
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    aty = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(k)]
    coef = solve(ata, aty)
    if coef is None:
        return None
    mean = sum(ys) / len(ys)
    ss_tot = sum((y - mean) ** 2 for y in ys)
    ss_res = sum((y - sum(c * v for c, v in zip(coef, r, strict=True))) ** 2 for r, y in zip(rows, ys, strict=True))
    return Model(tuple(coef), 1.0 - ss_res / ss_tot if ss_tot > 0 else None, len(ys))


@dataclass(slots=True)
class BaselineKpi:
    cfg: BaselineConfig
    scope: str
    windows: tuple[WindowSpec, ...]
    coverage_min: float
    energy: Term
    variables: list[Term]
    unit: str
    model: Model | None = None
    cusum: float = 0.0
    _train_x: list[list[float]] = field(default_factory=list)
    _train_y: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, line: LineConfig, cfg: BaselineConfig, ctx: Context, energy: Term, production: Term) -> BaselineKpi:
        w = ctx.specs([cfg.period])
        variables: list[Term] = []
        for v in cfg.variables:
            if v.production:
                variables.append(production)
            else:
                assert v.point is not None
                variables.append(Term([(ctx.source.channel(v.point, w), 1.0)], mean=v.point.resolved_kind == "level"))
        for t in (energy, production, *variables):
            for ch in t.channels():
                ch.use_window(w[0])
        model = None
        if cfg.coefficients is not None:
            coef = (cfg.coefficients["intercept"], *(cfg.coefficients[v.name] for v in cfg.variables))
            model = Model(coef, None, 0)
        unit = "kWh" if cfg.energy == "electricity_kwh" else "kgce"
        cov = ctx.coverage_min if line.coverage_min is None else line.coverage_min
        return cls(cfg, line.name, w, cov, energy, variables, unit, model)

    def final_until(self, window: str) -> float:
        return min(t.final_until(window) for t in (self.energy, *self.variables))

    def update(self, now: float) -> None:
        pass

    def values(self, spec: WindowSpec, start: float, end: float, now: float, final: bool) -> list[KpiValue]:
        if not final:
            return []
        e = self.energy.at(spec.name, start)
        xs = [t.at(spec.name, start) for t in self.variables]
        span = end - start
        coverage = max(0.0, min(1.0, min(v.covered_s for v in (e, *xs)) / span))
        good = coverage >= self.coverage_min and e.present
        x = [v.value for v in xs]
        detail: dict[str, float] = {"final": 1.0, "training": 0.0}
        rejected: Model | None = None
        training = self.model is None  # this period trains the model (the last one fits it): no CUSUM for it
        if good and self.model is None:
            self._train_x.append(x)
            self._train_y.append(e.value)
            if len(self._train_y) >= self.cfg.training_periods:
                self.model = fit(self._train_x, self._train_y)
                if self.model is not None and (self.model.r2 or 0.0) < self.cfg.r2_min:
                    rejected, self.model = self.model, None  # too weak to judge savings by: keep training
                if self.model is None:  # collinear, constant or weak: slide the training window
                    self._train_x.pop(0)
                    self._train_y.pop(0)
        quality = Quality.GOOD if good else Quality.UNCERTAIN if e.present else Quality.BAD
        reason = ""
        if rejected is not None:
            detail["r2"] = rejected.r2 or 0.0
            reason = (
                f"baseline model R² {rejected.r2 or 0.0:.2f} below r2_min {self.cfg.r2_min:g}: no expected energy "
                "and no CUSUM (R² >= 0.75 as cited from ISO 50006 / IPMVP practice, status 2nd)"
            )

        def kv(name: str, value: float | None, q: Quality = quality) -> KpiValue:
            return KpiValue(
                name,
                self.scope,
                value,
                self.unit,
                spec.name,
                start,
                end,
                coverage,
                q,
                now,
                None,
                None,
                "",
                dict(detail),
                reason=reason,
            )

        actual = kv("baseline_actual", e.value if e.present else None)
        if self.model is None or training:  # ISO 50006: the CUSUM runs over reporting periods, after the baseline's
            detail |= {"training": 1.0, "periods": float(len(self._train_y))}
            return [kv("baseline_actual", e.value if e.present else None)]
        if self.model.r2 is not None:
            detail["r2"] = self.model.r2
        detail["periods"] = float(self.model.n)
        if not good:
            return [
                actual,
                kv("baseline_expected", None, Quality.BAD),
                kv("baseline_cusum", self.cusum, Quality.UNCERTAIN),
            ]
        expected = self.model.predict(x)
        self.cusum += e.value - expected
        detail["difference"] = e.value - expected
        return [actual, kv("baseline_expected", expected), kv("baseline_cusum", self.cusum)]
