"""Custom KPIs: a formula (``agent.kpi.formula``) over points and other KPIs, evaluated per window period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.config.kpi import CustomKpiConfig, PointRefConfig
from agent.kpi.channels import Term
from agent.kpi.formula import KpiRef, Node, PointFn, evaluate, parse, references
from agent.kpi.indicators import Context
from agent.kpi.windows import WindowSpec
from agent.model import KpiValue, Quality, Role

# (full KPI name, window, period start, final) -> the value computed in this or an earlier evaluation
Lookup = Callable[[str, str, float, bool], KpiValue | None]
FinalUntil = Callable[[str, str], float]


def point_ref(p: PointFn, role_of: Callable[[str, str], Role | None]) -> PointRefConfig:
    """The channel a ``total()`` or ``mean()`` reads: by role if the text is a role, else by point name."""
    try:
        role: Role | None = Role(p.point)
    except ValueError:
        role = None
    if p.fn == "mean":  # a time-weighted mean: the same for a rate and a level
        kind: str | None = "level"
    elif role is not None:
        kind = None  # from the role
    else:
        known = role_of(p.device, p.point)
        kind = "counter" if known is None or known.is_counter else "rate"
    selector = {"role": role} if role is not None else {"point": p.point}
    return PointRefConfig.model_validate({"device": p.device, "kind": kind, **selector})


@dataclass(slots=True)
class CustomKpi:
    cfg: CustomKpiConfig
    scope: str
    windows: tuple[WindowSpec, ...]
    coverage_min: float
    node: Node
    kpis: list[str]
    terms: dict[PointFn, Term]
    lookup: Lookup
    kpi_final_until: FinalUntil

    @classmethod
    def build(
        cls,
        cfg: CustomKpiConfig,
        ctx: Context,
        role_of: Callable[[str, str], Role | None],
        lookup: Lookup,
        kpi_final_until: FinalUntil,
    ) -> CustomKpi:
        node = parse(cfg.formula)
        kpis, points = references(node)
        w = ctx.specs(cfg.windows)
        terms = {p: Term([(ctx.source.channel(point_ref(p, role_of), w), 1.0)], mean=p.fn == "mean") for p in points}
        cov = ctx.coverage_min if cfg.coverage_min is None else cfg.coverage_min
        return cls(cfg, cfg.scope, w, cov, node, kpis, terms, lookup, kpi_final_until)

    def final_until(self, window: str) -> float:
        fu = [t.final_until(window) for t in self.terms.values()]
        fu += [self.kpi_final_until(k, window) for k in self.kpis]
        return min(fu, default=float("inf"))

    def update(self, now: float) -> None:
        pass

    def values(self, spec: WindowSpec, start: float, end: float, now: float, final: bool) -> list[KpiValue]:
        span = end - start  # the whole window, also while it is open (a running value is provisional)
        coverages: list[float] = []
        missing = False

        def resolve(ref: KpiRef | PointFn) -> float | None:
            nonlocal missing
            if isinstance(ref, KpiRef):
                kv = self.lookup(ref.name, spec.name, start, final)
                if kv is None or kv.value is None:
                    missing = True
                    return None
                coverages.append(kv.coverage)
                return kv.value
            tv = self.terms[ref].at(spec.name, start)
            coverages.append(min(1.0, tv.covered_s / span))
            if not tv.present:
                missing = True
                return None
            return tv.value

        value = evaluate(self.node, resolve)
        coverage = min(coverages, default=0.0)
        if value is None:
            quality = Quality.BAD if missing else Quality.UNCERTAIN
        else:
            quality = Quality.GOOD if coverage >= self.coverage_min else Quality.UNCERTAIN
        detail = {"final": 1.0 if final else 0.0}
        return [
            KpiValue(
                self.cfg.name,
                self.scope,
                value,
                self.cfg.unit,
                spec.name,
                start,
                end,
                coverage,
                quality,
                now,
                None,
                None,
                f"formula: {self.cfg.formula}",
                detail,
                final=final,
            )
        ]


def in_dependency_order(customs: Sequence[CustomKpiConfig]) -> list[CustomKpiConfig]:
    """Custom KPIs in dependency order (a formula may use another custom KPI); a cycle is an error."""
    by_name = {f"{c.scope}.{c.name}": c for c in customs}
    done: dict[str, CustomKpiConfig] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError(f"custom KPI '{name}' depends on itself through its formula")
        visiting.add(name)
        for ref in references(parse(by_name[name].formula))[0]:
            if ref in by_name:
                visit(ref)
        visiting.discard(name)
        done[name] = by_name[name]

    for n in by_name:
        visit(n)
    return list(done.values())
