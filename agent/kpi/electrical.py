"""Electrical KPIs of meter groups: power factor, renewable share against the park ladder, energy balances."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from agent.config.kpi import BalanceConfig, PointRefConfig, PowerFactorConfig, RenewableConfig
from agent.kpi.indicators import Context, TermKpi

REVERSE_REACTIVE_RULE = (
    "reactive energy = import + export kvarh (reverse kvarh of over-compensation added, as supply companies bill it; "
    "status UNCONF: not confirmed in the text of 功率因数调整电费办法)"
)


def power_factor_kpi(cfg: PowerFactorConfig, ctx: Context) -> TermKpi:
    """Power factor of the window, kWh / sqrt(kWh² + kvarh²), with kvarh the import plus the export reactive energy
    where export counters are declared."""
    w = ctx.specs(cfg.windows)

    def pf(v: Mapping[str, float]) -> float | None:
        s = math.hypot(v["p"], v["q"])
        return v["p"] / s if s > 0 else None

    terms = {"p": ctx.term(cfg.active, w), "q": ctx.term(cfg.reactive + cfg.reactive_export, w)}
    if cfg.reactive_export:
        terms["x"] = ctx.term(cfg.reactive_export, w)

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        out = {"active_kwh": v["p"], "reactive_kvarh": v["q"]}
        if "x" in v:
            out["reactive_export_kvarh"] = v["x"]
        return out

    reference = REVERSE_REACTIVE_RULE if cfg.reactive_export else ""
    return TermKpi("power_factor", cfg.name, "1", terms, pf, w, ctx.coverage_min, detail=detail, reference=reference)


def renewable_kpi(cfg: RenewableConfig, ctx: Context, default_renewable: Sequence[PointRefConfig]) -> TermKpi:
    w = ctx.specs(cfg.windows)
    ren = ctx.term(cfg.renewable if cfg.renewable is not None else default_renewable, w)
    tot = ctx.term(cfg.total, w)
    add = not cfg.total_includes_renewable
    targets = sorted(cfg.targets)

    def share(v: Mapping[str, float]) -> float | None:
        denom = v["t"] + (v["r"] if add else 0.0)
        return v["r"] / denom if denom > 0 else None

    def target(value: float) -> tuple[float | None, str]:
        nxt = next((t for t in targets if value < t - 1e-12), None)
        ladder = " / ".join(f"{t * 100:g} %" for t in targets)
        if nxt is None:
            return value - targets[-1], f"park target ladder {ladder}: top target reached"
        return nxt - value, f"park target ladder {ladder}: next target {nxt * 100:g} %"

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        s = share(v)
        reached = max((t for t in targets if s is not None and s >= t - 1e-12), default=0.0)
        return {"renewable_kwh": v["r"], "total_kwh": v["t"] + (v["r"] if add else 0.0), "target_reached": reached}

    return TermKpi(
        "renewable_share", cfg.name, "1", {"r": ren, "t": tot}, share, w, ctx.coverage_min, detail=detail, target=target
    )


def balance_kpis(cfg: BalanceConfig, ctx: Context) -> list[TermKpi]:
    w = ctx.specs(cfg.windows)
    terms = {"m": ctx.term([cfg.main], w), "s": ctx.term(cfg.subs, w)}

    def detail(v: Mapping[str, float]) -> dict[str, float]:
        share = (v["m"] - v["s"]) / v["m"] if v["m"] > 0 else 0.0
        return {
            "main_kwh": v["m"],
            "subs_kwh": v["s"],
            "limit": cfg.max_unaccounted_share,
            "exceeded": 1.0 if share > cfg.max_unaccounted_share else 0.0,
        }

    return [
        TermKpi(
            "unaccounted_share",
            cfg.name,
            "1",
            terms,
            lambda v: (v["m"] - v["s"]) / v["m"] if v["m"] > 0 else None,
            w,
            ctx.coverage_min,
            detail=detail,
        ),
        TermKpi("unaccounted_kwh", cfg.name, "kWh", terms, lambda v: v["m"] - v["s"], w, ctx.coverage_min),
    ]
