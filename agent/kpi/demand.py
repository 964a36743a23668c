"""Maximum demand: the highest mean active power over a block (15 min in China), per reporting window.

Fixed blocks start at local quarter hours; the sliding variant moves in ``sliding_step_min`` steps (the block is
the sum of its last ``block_min / step`` sub-blocks). A block enters the maximum once it is final, and only if its
coverage reached the minimum (a block with a gap would understate demand). Each block is processed once: O(1)
per block, independent of the number of samples.

With ``contracted_kw`` (the contracted/核定 demand) each value carries ``detail["over_contracted_kw"]`` (maximum
minus contracted) and ``detail["over_contract"]`` (1.0 when the maximum exceeded it, else 0.0).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agent.config.kpi import DemandConfig
from agent.kpi.channels import Term
from agent.kpi.indicators import Context
from agent.kpi.windows import WindowSpec
from agent.model import KpiValue, Quality


@dataclass(slots=True)
class _Series:
    """Newly final blocks of one block length, in time order."""

    spec: WindowSpec
    term: Term
    done_until: float
    seconds: float

    def new_blocks(self, coverage_min: float) -> list[tuple[float, float, float | None]]:
        """(start, end, energy or None if under-covered) of every block final since the last call."""
        out: list[tuple[float, float, float | None]] = []
        until = self.term.final_until(self.spec.name)
        while True:
            start, end = self.spec.bounds(self.done_until)
            if end > until:
                break
            tv = self.term.at(self.spec.name, start)
            ok = tv.covered_s >= coverage_min * (end - start)
            out.append((start, end, tv.value if ok else None))
            self.done_until = end
        return out


@dataclass(slots=True)
class DemandKpi:
    cfg: DemandConfig
    scope: str
    windows: tuple[WindowSpec, ...]
    coverage_min: float
    energy: Term  # in the reporting windows, for coverage
    fixed: _Series
    sliding: _Series
    _recent: deque[float | None] = field(default_factory=deque)
    _max: dict[tuple[str, str, float], tuple[float, float]] = field(default_factory=dict)
    skipped: int = 0

    @classmethod
    def build(cls, cfg: DemandConfig, ctx: Context, start: float) -> DemandKpi:
        w = ctx.specs(cfg.windows)
        block = WindowSpec(f"{cfg.block_min}m", ctx.tz, ctx.shift_starts)
        step = WindowSpec(f"{cfg.sliding_step_min}m", ctx.tz, ctx.shift_starts)
        energy = ctx.term(cfg.meters, (*w, block, step))
        return cls(
            cfg,
            cfg.name,
            w,
            ctx.coverage_min,
            energy,
            _Series(block, energy, block.bounds(start)[0], cfg.block_min * 60.0),
            _Series(step, energy, step.bounds(start)[0], cfg.sliding_step_min * 60.0),
        )

    def final_until(self, window: str) -> float:
        return min(self.energy.final_until(window), self.fixed.done_until, self.sliding.done_until)

    def update(self, now: float) -> None:
        self._update()

    def _update(self) -> None:
        hours = self.cfg.block_min / 60.0
        for start, _end, e in self.fixed.new_blocks(self.coverage_min):
            if e is None:
                self.skipped += 1
            else:
                self._note("fixed", start, e / hours)
        n = self.cfg.block_min // self.cfg.sliding_step_min
        for _start, end, e in self.sliding.new_blocks(self.coverage_min):
            self._recent.append(e)
            if len(self._recent) > n:
                self._recent.popleft()
            if len(self._recent) == n and all(x is not None for x in self._recent):
                self._note("sliding", end - self.cfg.block_min * 60.0, sum(x or 0.0 for x in self._recent) / hours)

    def _note(self, kind: str, block_start: float, kw: float) -> None:
        """A block starting at ``block_start`` counts in the reporting period where it ends."""
        at = block_start + self.cfg.block_min * 60.0 - 1e-6
        for spec in self.windows:
            key = (kind, spec.name, spec.bounds(at)[0])
            best = self._max.get(key)
            if best is None or kw > best[0]:
                self._max[key] = (kw, block_start)

    def values(self, spec: WindowSpec, start: float, end: float, now: float, final: bool) -> list[KpiValue]:
        self._update()
        tv = self.energy.at(spec.name, start)
        span = end - start  # the whole window, also while it is open (a running value is provisional)
        coverage = max(0.0, min(1.0, tv.covered_s / span))
        out: list[KpiValue] = []
        for kind, name in (("fixed", "max_demand_kw"), ("sliding", "max_demand_sliding_kw")):
            best = self._max.pop((kind, spec.name, start), None) if final else self._max.get((kind, spec.name, start))
            value = None if best is None else best[0]
            quality = (
                Quality.BAD if value is None else Quality.GOOD if coverage >= self.coverage_min else Quality.UNCERTAIN
            )
            detail = {"final": 1.0 if final else 0.0, "block_min": float(self.cfg.block_min)}
            distance: float | None = None
            reference = reason = ""
            if best is not None:
                detail["block_start"] = best[1]
                if self.cfg.contracted_kw is not None:
                    distance = best[0] - self.cfg.contracted_kw
                    detail["over_contracted_kw"] = distance  # the wire carries ``distance`` only with a grade
                    detail["over_contract"] = 1.0 if distance > 0 else 0.0
                    reference = f"contracted demand {self.cfg.contracted_kw:g} kW"
                    if distance > 0:
                        reason = (
                            f"over the contracted demand by {distance:.1f} kW (the excess is commonly billed at "
                            "twice the demand tariff; supply-utility practice, status 2nd)"
                        )
            out.append(
                KpiValue(
                    name,
                    self.scope,
                    value,
                    "kW",
                    spec.name,
                    start,
                    end,
                    coverage,
                    quality,
                    now,
                    None,
                    distance,
                    reference,
                    detail,
                    final=final,
                    reason=reason,
                )
            )
        return out
