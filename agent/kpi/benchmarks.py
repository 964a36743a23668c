"""China's energy-efficiency levels per unit of product, and grading a KPI value against them.

Rows come from ``agent/data/energy_levels.yaml`` (edition, standard, source and verification status on each) and
from the site's ``kpi.levels`` overrides. A grade computed from a row that is not status OK is still given, but its
``reference`` text says so: it is never presented as official.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from agent.config.kpi import LevelOverrideConfig
from agent.kpi.factors import load_data_yaml
from agent.model import Grade

_STATUS_TEXT = {
    "OK": "status OK",
    "2nd": "status 2nd (not confirmed in the official text)",
    "UNCONF": "status UNCONF (unconfirmed, not an official value)",
    "calc": "status calc (derived)",
    "site": "set by the site",
}


@dataclass(frozen=True, slots=True)
class LevelRow:
    """One indicator's levels. For kind "policy", ``benchmark``/``baseline`` are 标杆/基准; for "gb_quota" they are
    the standard's grade 1 / grade 3; for "site" they are the site's own (e.g. a local authority's) values."""

    indicator: str
    product: str
    kind: str
    kpi: str
    unit: str
    benchmark: float
    baseline: float
    edition: str
    standard: str
    source: str
    status: str
    note: str = ""

    @property
    def official(self) -> bool:
        return self.status == "OK"

    def reference(self) -> str:
        """E.g. 'GB 16780-2021 cement_clinker, edition 2021, status 2nd (not confirmed in the official text)'."""
        status = _STATUS_TEXT.get(self.status, f"status {self.status}")
        levels = {
            "policy": "benchmark/baseline levels",
            "gb_quota": "grade 1/grade 3 of the quota standard, not the policy levels",
            "site": "site levels",
        }.get(self.kind, self.kind)
        return f"{self.standard} {self.indicator}, edition {self.edition}, {status}; {levels}, source {self.source}"


@dataclass(frozen=True, slots=True)
class Grading:
    grade: Grade
    distance: float  # in the KPI's unit; positive = worse than the level compared with
    compared_with: str  # "benchmark" or "baseline"
    to_benchmark: float
    to_baseline: float


def grade(value: float, row: LevelRow) -> Grading:
    """Lower is better. At or below the benchmark: ``benchmark`` (distance to it, <= 0). Between the levels:
    ``between`` (distance still to go to the benchmark, > 0). Above the baseline: ``below_baseline`` (distance
    above the baseline, > 0)."""
    to_bm = value - row.benchmark
    to_bl = value - row.baseline
    if value <= row.benchmark:
        return Grading(Grade.BENCHMARK, to_bm, "benchmark", to_bm, to_bl)
    if value <= row.baseline:
        return Grading(Grade.BETWEEN, to_bm, "benchmark", to_bm, to_bl)
    return Grading(Grade.BELOW_BASELINE, to_bl, "baseline", to_bm, to_bl)


@dataclass(frozen=True, slots=True)
class LevelTable:
    rows: tuple[LevelRow, ...]

    def indicators(self) -> set[str]:
        return {r.indicator for r in self.rows}

    def find(self, indicator: str, edition: str | None = None) -> LevelRow | None:
        """The row for ``indicator`` in ``edition``, or in its newest edition when none is asked for."""
        rows = [r for r in self.rows if r.indicator == indicator and (edition is None or r.edition == edition)]
        return max(rows, key=lambda r: r.edition) if rows else None

    def with_rows(self, extra: Iterable[LevelRow]) -> LevelTable:
        """Site rows replace shipped rows with the same indicator and edition, and add new ones."""
        extra = tuple(extra)
        keys = {(r.indicator, r.edition) for r in extra}
        return LevelTable(tuple(r for r in self.rows if (r.indicator, r.edition) not in keys) + extra)


def site_levels(overrides: Iterable[LevelOverrideConfig], base: LevelTable | None = None) -> LevelTable:
    """The shipped table with a site's ``kpi.levels`` rows applied."""
    return (base or load_levels()).with_rows(
        LevelRow(
            lv.indicator,
            lv.product,
            "site" if lv.status == "site" else "policy",
            lv.kpi,
            lv.unit,
            lv.benchmark,
            lv.baseline,
            lv.edition,
            lv.standard,
            lv.source,
            lv.status,
        )
        for lv in overrides
    )


@cache
def load_levels() -> LevelTable:
    """The shipped level table (read once)."""
    raw = load_data_yaml("energy_levels.yaml")
    rows = tuple(
        LevelRow(
            indicator=r["indicator"],
            product=r["product"],
            kind=r["kind"],
            kpi=r["kpi"],
            unit=r["unit"],
            benchmark=float(r["benchmark"]),
            baseline=float(r["baseline"]),
            edition=str(r["edition"]),
            standard=r["standard"],
            source=str(r["source"]),
            status=r["status"],
            note=r.get("note", ""),
        )
        for r in raw["levels"]
    )
    return LevelTable(rows)
